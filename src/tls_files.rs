//! TLS material from PEM files that rotate: reading certificates and keys,
//! and a rustls config rebuilt and swapped in when the files change. Shared
//! by the listener (`server::tls`) and the upstream connections
//! (`upstream::tls`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::watch::{DirWatch, WatchPath};

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM block.
    #[error("{}: {what}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the material (a key that does not match the certificate…).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client CA bundle cannot verify anything.
    #[error("client CA bundle: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
    /// No CA bundle was configured and the system has no trusted roots.
    #[error("no trusted roots: the system has none ({0}); set a CA bundle")]
    NoRoots(String),
}

/// Every certificate in a PEM file; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |what: String| TlsError::File {
        path: path.to_path_buf(),
        what,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        what: format!("no private key: {e}"),
    })
}

/// A trust store of every certificate in a PEM CA bundle.
pub fn root_store(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::File {
            path: path.to_path_buf(),
            what: format!("not a CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// A hash of the files' contents (unreadable files hash as empty), so a
/// watch event for another file in the same directory changes nothing.
pub fn fingerprint(files: &[&Path]) -> u64 {
    let mut h = DefaultHasher::new();
    for f in files {
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

/// A config built from files, swapped for a new one when their contents
/// change. Readers load the current one per handshake: connections keep
/// what they were made with.
pub struct Rotating<C> {
    files: Vec<PathBuf>,
    current: ArcSwap<C>,
    /// The fingerprint of the files the current config was built from.
    loaded: Mutex<u64>,
}

impl<C> Rotating<C> {
    /// Builds the first config from `files`; fails as `build` does.
    pub fn new(
        files: Vec<PathBuf>,
        build: impl FnOnce() -> Result<C, TlsError>,
    ) -> Result<Rotating<C>, TlsError> {
        let loaded = fingerprint(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
        Ok(Rotating {
            files,
            current: ArcSwap::from_pointee(build()?),
            loaded: Mutex::new(loaded),
        })
    }

    /// The config new handshakes use.
    pub fn current(&self) -> Arc<C> {
        self.current.load_full()
    }

    /// Rebuilds the config when the files' contents changed: `Ok(true)` when
    /// the new one is in place, `Ok(false)` when nothing changed. On an
    /// error the current config stays (and the same files are tried again
    /// at the next change).
    pub fn reload(&self, build: impl FnOnce() -> Result<C, TlsError>) -> Result<bool, TlsError> {
        let now = fingerprint(&self.files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded == now {
            return Ok(false);
        }
        self.current.store(Arc::new(build()?));
        *loaded = now;
        Ok(true)
    }

    /// The directories to watch for the files (a Kubernetes Secret's
    /// `..data` swap changes the directory, never the file opened).
    pub fn watched_dirs(&self) -> Vec<WatchPath> {
        let mut dirs: Vec<WatchPath> = self
            .files
            .iter()
            .map(|f| WatchPath {
                path: watched_dir(f),
                recursive: false,
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// Calls `reload` on `owner` after each burst of changes to `dirs` and on
/// every SIGHUP, for as long as `owner` lives (the watch is dropped with
/// the returned handle; the SIGHUP task ends at the first signal after
/// `owner` is gone).
pub fn reload_on_change<T: Send + Sync + 'static>(
    name: &str,
    dirs: &[WatchPath],
    owner: Weak<T>,
    reload: fn(&T),
) -> Result<DirWatch, String> {
    reload_on_sighup(owner.clone(), reload);
    DirWatch::start(name, dirs, move || {
        let Some(owner) = owner.upgrade() else {
            return false;
        };
        reload(&owner);
        true
    })
}

fn reload_on_sighup<T: Send + Sync + 'static>(owner: Weak<T>, reload: fn(&T)) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let Some(owner) = owner.upgrade() else { return };
                reload(&owner);
            }
        });
    }
}

/// The directory holding `file` (`.` for a bare name).
fn watched_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
