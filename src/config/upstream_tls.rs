//! `upstreams.<name>.tls`: how the gateway verifies an `https://` upstream
//! and which client certificate it presents (mTLS).

use std::path::PathBuf;

use serde::Deserialize;

/// TLS to one upstream. Every field is optional: an `https://` upstream
/// with no `tls:` section is verified against the system's trusted roots
/// under its URL's host name, and no client certificate is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM bundle of the CAs the upstream's certificate must chain to,
    /// instead of the system's trusted roots (relative to the working
    /// directory, like every path in routes.yaml).
    pub ca: Option<PathBuf>,
    /// PEM certificate chain presented to the upstream (mTLS), leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The name sent as SNI and checked against the upstream's certificate,
    /// instead of the URL's host (an IP address, or a Service name that
    /// differs from the certificate's).
    pub server_name: Option<String>,
}

impl UpstreamTls {
    /// Problems a load should refuse, each naming its field under `at`
    /// (`upstreams.<name>.tls`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.cert.is_some() != self.key.is_some() {
            out.push(format!(
                "{at}: `cert` and `key` go together (the client certificate and its key)"
            ));
        }
        if let Some(name) = &self.server_name
            && rustls_pki_name(name).is_none()
        {
            out.push(format!(
                "{at}.server_name: {name:?} is neither a DNS name nor an IP address"
            ));
        }
        out
    }

    /// The files it reads, in a fixed order.
    pub fn files(&self) -> Vec<&std::path::Path> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect()
    }
}

/// `name` as rustls would check it, if it is a valid server name.
fn rustls_pki_name(name: &str) -> Option<rustls::pki_types::ServerName<'static>> {
    rustls::pki_types::ServerName::try_from(name.to_string()).ok()
}
