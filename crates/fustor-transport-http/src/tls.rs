//! TLS of the `fusion` sender: which CA signs Fusion's certificate, the agent's own certificate
//! when Fusion asks for one, and errors that say which of the two is wrong.

use std::path::Path;

use reqwest::ClientBuilder;
use serde::Deserialize;

use crate::SendError;

/// The sender's TLS files (`driver_params`). Paths are used as written: give absolute ones,
/// the agent's working directory is `/` when it runs as a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TlsFiles {
    /// PEM CA certificate(s) that sign Fusion's certificate. When set, only these are
    /// trusted (a private CA should not be mixed with the public roots); absent, the public
    /// web roots are.
    pub ca_file: Option<String>,
    /// PEM client certificate (chain) presented to Fusion (`tls.client_ca_file` there).
    pub client_cert_file: Option<String>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<String>,
}

fn read(key: &str, path: &str) -> Result<Vec<u8>, SendError> {
    std::fs::read(Path::new(path)).map_err(|e| {
        SendError::Config(format!(
            "driver_params.{key}: cannot read {}: {e}",
            fustor_core::lossless::display(path)
        ))
    })
}

impl TlsFiles {
    /// Adds the CA and the identity to a client builder (reads the files: configuration time).
    pub(crate) fn apply(&self, mut b: ClientBuilder) -> Result<ClientBuilder, SendError> {
        if let Some(ca) = &self.ca_file {
            let certs = reqwest::Certificate::from_pem_bundle(&read("ca_file", ca)?)
                .map_err(|e| SendError::Config(format!("driver_params.ca_file: {e}")))?;
            if certs.is_empty() {
                return Err(SendError::Config(
                    "driver_params.ca_file: no CERTIFICATE block found".into(),
                ));
            }
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                let mut pem = read("client_cert_file", cert)?;
                pem.push(b'\n');
                pem.extend(read("client_key_file", key)?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    SendError::Config(format!(
                        "driver_params.client_cert_file/client_key_file: {e}"
                    ))
                })?;
                b = b.identity(id);
            }
            _ => {
                return Err(SendError::Config(
                    "driver_params.client_cert_file and client_key_file go together".into(),
                ));
            }
        }
        Ok(b)
    }
}

/// The rustls error behind a failed request, if TLS is what failed. `io::Error::source` skips
/// the error it wraps, and the connector nests one I/O error in another, so each is opened.
fn rustls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    fn open<'a>(s: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(t) = s.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.get_ref().and_then(|i| open(i));
        }
        None
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(t) = open(s) {
            return Some(t);
        }
        src = s.source();
    }
    None
}

/// Adds what to check to a connection error that TLS caused.
pub(crate) fn explain(message: String, e: &reqwest::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let hint = match rustls_error(e) {
        None => return message,
        Some(E::InvalidCertificate(C::UnknownIssuer | C::BadSignature)) => {
            "Fusion's certificate is not signed by a CA this agent trusts: set the sender's \
             driver_params.ca_file to the CA that signed it"
        }
        Some(E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            "Fusion's certificate does not name the host of the sender uri"
        }
        Some(E::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            "Fusion's certificate has expired"
        }
        Some(E::AlertReceived(
            A::CertificateRequired | A::BadCertificate | A::UnknownCA | A::CertificateUnknown,
        )) => {
            "Fusion refused this agent's client certificate: set driver_params.client_cert_file \
             and client_key_file to a certificate signed by Fusion's tls.client_ca_file"
        }
        Some(_) => "TLS handshake with Fusion failed",
    };
    format!("{message} ({hint})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_an_identity_or_a_missing_file_is_a_config_error() {
        let half = TlsFiles {
            client_cert_file: Some("/nonexistent/agent.pem".into()),
            ..TlsFiles::default()
        };
        assert!(matches!(
            half.apply(reqwest::Client::builder()),
            Err(SendError::Config(m)) if m.contains("go together")
        ));
        let missing = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        assert!(matches!(
            missing.apply(reqwest::Client::builder()),
            Err(SendError::Config(m)) if m.contains("ca_file")
        ));
    }
}
