//! TLS to an `https://` upstream (rustls, ring): the upstream's certificate
//! verified against a CA bundle or the system's trusted roots, an optional
//! client certificate (mTLS), SNI and verification under the URL's host or
//! a configured name, HTTP/2 by ALPN, and rotation without a restart.
//!
//! The files are watched (and re-read on SIGHUP): new connections handshake
//! with the new material, open connections keep theirs, as Envoy does with
//! rotated secrets. A bad new file is logged and the old material stays.
//! The configs share one session cache, so resumption survives a rotation.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustls::ClientConfig;
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Resumption};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::UpstreamTls;
use crate::tls_files::{Rotating, TlsError, certificates, private_key, root_store};
use crate::watch::DirWatch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client side of TLS to one upstream; shared by its connections.
pub struct ClientTls {
    url: Arc<str>,
    settings: UpstreamTls,
    server_name: ServerName<'static>,
    config: Rotating<ClientConfig>,
    sessions: Arc<dyn ClientSessionStore>,
    watch: Mutex<Option<DirWatch>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("url", &self.url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads the trust roots and client certificate for the upstream at
    /// `url` (whose host is the default server name), and starts watching
    /// the files; fails naming the file.
    pub fn load(url: &str, host: &str, settings: &UpstreamTls) -> Result<Arc<ClientTls>, String> {
        let name = settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("upstream {url}: server name {name:?}: {e}"))?;
        let sessions: Arc<dyn ClientSessionStore> = Arc::new(ClientSessionMemoryCache::new(256));
        let files: Vec<PathBuf> = settings.files().into_iter().map(Into::into).collect();
        let config = Rotating::new(files, || build(settings, &sessions))
            .map_err(|e| format!("upstream {url}: {e}"))?;
        let tls = Arc::new(ClientTls {
            url: Arc::from(url),
            settings: settings.clone(),
            server_name,
            config,
            sessions,
            watch: Mutex::new(None),
        });
        tls.start_watch();
        Ok(tls)
    }

    /// Rebuilds the config when the files changed: `Ok(true)` when new
    /// connections now use new material. On an error the current material
    /// stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        self.config.reload(|| build(&self.settings, &self.sessions))
    }

    /// The TLS handshake over `tcp`; fails when the upstream picks a
    /// protocol other than HTTP/2 by ALPN.
    pub async fn connect(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, BoxError> {
        let connector = tokio_rustls::TlsConnector::from(self.config.current());
        let stream = connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        match stream.get_ref().1.alpn_protocol() {
            // No ALPN answer: a gRPC server speaks HTTP/2 regardless.
            None | Some(b"h2") => Ok(stream),
            Some(other) => Err(format!(
                "the upstream chose {:?} by ALPN, not HTTP/2",
                String::from_utf8_lossy(other)
            )
            .into()),
        }
    }

    fn start_watch(self: &Arc<Self>) {
        if self.settings.files().is_empty() {
            return;
        }
        let dirs = self.config.watched_dirs();
        match crate::tls_files::reload_on_change(
            "upstream-tls",
            &dirs,
            Arc::downgrade(self),
            ClientTls::log_reload,
        ) {
            Ok(w) => *self.watch.lock().unwrap_or_else(|p| p.into_inner()) = Some(w),
            Err(e) => tracing::warn!(url = %self.url, "upstream TLS: rotation is off: {e}"),
        }
    }

    fn log_reload(&self) {
        match self.reload() {
            Ok(true) => tracing::info!(url = %self.url, "upstream TLS: certificate files reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(url = %self.url, "upstream TLS: keeping the current material: {e}")
            }
        }
    }
}

/// A client config from the files as they are now.
fn build(
    settings: &UpstreamTls,
    sessions: &Arc<dyn ClientSessionStore>,
) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match &settings.ca {
        Some(ca) => root_store(ca)?,
        None => system_roots()?,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&settings.cert, &settings.key) {
        // with_client_auth_cert checks that the key matches the certificate.
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    config.resumption = Resumption::store(sessions.clone());
    Ok(config)
}

/// The system's trusted roots (what `SSL_CERT_FILE`/`SSL_CERT_DIR` or the
/// platform's store hold); unusable entries are skipped.
fn system_roots() -> Result<rustls::RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or("no certificates found".to_string(), |e| e.to_string());
        return Err(TlsError::NoRoots(why));
    }
    Ok(roots)
}
