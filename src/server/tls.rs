//! TLS on the listener (rustls, ring): the certificate and key from PEM
//! files, HTTP/2 or HTTP/1.1 by ALPN, optional client certificates (mTLS)
//! verified against a CA bundle, and rotation without a restart.
//!
//! The whole `ServerConfig` is rebuilt from the files when they change and
//! swapped in (rather than only the certified key behind a resolver) so that
//! a rotated client CA bundle is picked up too; the configs share one
//! session cache, so resumption survives a rotation. A handshake loads the
//! config once: connections keep the session they made, new handshakes get
//! the new certificate. A bad new certificate or key is logged and the old
//! one keeps serving.

mod x509;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use percent_encoding::{CONTROLS, utf8_percent_encode};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tonic::metadata::{Ascii, MetadataKey, MetadataValue};

use crate::call::Call;
use crate::pipeline::{CallInfo, Hook, PeerIdentity};
use crate::status::GatewayError;
pub use crate::tls_files::TlsError;
use crate::tls_files::{Rotating, certificates, private_key, root_store};
use crate::watch::DirWatch;

/// Whether a client must present a certificate when a client CA is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// Handshakes without a valid client certificate fail.
    #[default]
    Required,
    /// A client may send none; one it sends must be valid.
    Optional,
}

/// Where the listener's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA bundle that client certificates are verified against; `None`:
    /// no client certificates are asked for.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: required or optional client certificates.
    pub client_auth: ClientAuth,
}

impl TlsSettings {
    /// The files, in a fixed order.
    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert.clone(), self.key.clone()];
        files.extend(self.client_ca.clone());
        files
    }

    /// A server config from the files as they are now.
    fn build(&self, sessions: &Arc<dyn StoresServerSessions>) -> Result<ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates(&self.cert)?;
        let key = private_key(&self.key)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca {
            Some(ca) => builder.with_client_cert_verifier(self.verifier(ca, provider)?),
            None => builder.with_no_client_auth(),
        };
        // with_single_cert checks that the key matches the certificate.
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.session_storage = sessions.clone();
        Ok(config)
    }

    fn verifier(
        &self,
        ca: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider);
        let builder = match self.client_auth {
            ClientAuth::Required => builder,
            ClientAuth::Optional => builder.allow_unauthenticated(),
        };
        Ok(builder.build()?)
    }
}

/// The listener's TLS: the current server config, rebuilt on rotation.
pub struct TlsListener {
    settings: TlsSettings,
    config: Rotating<ServerConfig>,
    sessions: Arc<dyn StoresServerSessions>,
    handshake_failures: AtomicU64,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An accepted TLS connection.
pub(super) struct Accepted {
    pub(super) stream: TlsStream<TcpStream>,
    /// The client chose HTTP/2 by ALPN.
    pub(super) h2: bool,
    /// The verified client certificate's identity.
    pub(super) peer: Option<PeerIdentity>,
}

impl TlsListener {
    /// Loads the certificate, key and client CA; fails naming the file.
    pub fn load(settings: TlsSettings) -> Result<Arc<TlsListener>, TlsError> {
        let sessions: Arc<dyn StoresServerSessions> = ServerSessionMemoryCache::new(1024);
        let config = Rotating::new(settings.files(), || settings.build(&sessions))?;
        Ok(Arc::new(TlsListener {
            settings,
            config,
            sessions,
            handshake_failures: AtomicU64::new(0),
        }))
    }

    /// Whether clients are asked for certificates.
    pub fn verifies_clients(&self) -> bool {
        self.settings.client_ca.is_some()
    }

    /// Handshakes that failed or timed out since the start.
    pub fn handshake_failures(&self) -> u64 {
        self.handshake_failures.load(Ordering::Relaxed)
    }

    /// Rebuilds the config when the files' contents changed: `Ok(true)` when
    /// new material now serves, `Ok(false)` when nothing changed. On an
    /// error the current config keeps serving (and the same files are
    /// tried again at the next change).
    pub fn reload(&self) -> Result<bool, TlsError> {
        self.config.reload(|| self.settings.build(&self.sessions))
    }

    /// Watches the files' directories and reloads after each burst of
    /// changes, and on every SIGHUP (for a platform that cannot watch
    /// files); dropping the watch stops it.
    pub fn watch(self: &Arc<Self>) -> Result<DirWatch, String> {
        crate::tls_files::reload_on_change(
            "tls",
            &self.config.watched_dirs(),
            Arc::downgrade(self),
            TlsListener::log_reload,
        )
    }

    fn log_reload(&self) {
        match self.reload() {
            Ok(true) => tracing::info!("TLS: certificate files reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!("TLS: keeping the current certificate: {e}"),
        }
    }

    /// The handshake, bounded by `timeout`. `None` (logged at debug, and
    /// counted) when it fails or times out.
    pub(super) async fn accept(&self, tcp: TcpStream, timeout: Duration) -> Option<Accepted> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.current());
        let failed = |why: String| {
            self.handshake_failures.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("protogate_tls_handshake_failures_total").increment(1);
            tracing::debug!("TLS handshake failed: {why}");
            None
        };
        let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(e.to_string()),
            Err(_) => return failed(format!("no handshake within {timeout:?}")),
        };
        let session = stream.get_ref().1;
        let h2 = session.alpn_protocol() == Some(b"h2");
        let peer = session
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|leaf| peer_identity(leaf));
        Some(Accepted { stream, h2, peer })
    }
}

/// The identity of a verified leaf certificate.
fn peer_identity(leaf: &CertificateDer<'_>) -> Option<PeerIdentity> {
    let Some((subject, sans)) = x509::identity(leaf) else {
        tracing::debug!("TLS: the client certificate's subject could not be read");
        return None;
    };
    Some(PeerIdentity {
        subject: subject.into(),
        sans: sans.into(),
    })
}

/// Forwards the verified client identity upstream as metadata, under the
/// configured names (each optional). Values a client sent under those names
/// are always removed first, so a client without a certificate cannot claim
/// one. Non-ASCII characters are percent-encoded; SANs are joined with `,`.
#[derive(Debug, Clone, Default)]
pub struct ForwardPeer {
    subject: Option<MetadataKey<Ascii>>,
    sans: Option<MetadataKey<Ascii>>,
}

impl ForwardPeer {
    /// A hook forwarding the subject and/or the SANs; fails on a name that
    /// is not a valid metadata key.
    pub fn new(subject: Option<&str>, sans: Option<&str>) -> Result<ForwardPeer, String> {
        let key = |name: &str| {
            MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{name}: not a valid metadata name"))
        };
        Ok(ForwardPeer {
            subject: subject.map(key).transpose()?,
            sans: sans.map(key).transpose()?,
        })
    }

    /// Whether it forwards anything.
    pub fn is_empty(&self) -> bool {
        self.subject.is_none() && self.sans.is_none()
    }
}

impl Hook for ForwardPeer {
    fn on_call(&self, call: &mut Call, _: &CallInfo<'_>) -> Result<(), GatewayError> {
        let peer = call.extensions.get::<PeerIdentity>().cloned();
        for (key, value) in [
            (&self.subject, peer.as_ref().map(|p| p.subject.to_string())),
            (&self.sans, peer.as_ref().map(|p| p.sans.join(","))),
        ] {
            let Some(key) = key else { continue };
            call.metadata.remove(key.clone());
            let encoded = value.map(|v| utf8_percent_encode(&v, CONTROLS).to_string());
            if let Some(v) = encoded.and_then(|v| MetadataValue::try_from(v).ok()) {
                call.metadata.insert(key.clone(), v);
            }
        }
        Ok(())
    }
}
