//! What starts a reload besides the admin endpoint: SIGHUP, and changes to
//! routes.yaml and the descriptor files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Live, fingerprint, watch_paths};
use crate::watch::DirWatch;

/// Reloads on every SIGHUP, for as long as the runtime runs.
pub fn reload_on_sighup(live: &Arc<Live>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload with the admin endpoint");
                return;
            }
        };
        let live = live.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                live.reload("SIGHUP").await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = live;
}

/// Watches the directories of routes.yaml and the descriptors, and reloads
/// when the contents of those files change (debounced; changes to other
/// files in the same directories are ignored). `None` when the gateway has
/// no files to watch or the watch cannot start (logged).
pub fn watch_files(live: &Arc<Live>) -> Option<DirWatch> {
    let settings = live.settings()?.clone();
    let paths = watch_paths(&settings);
    if paths.is_empty() {
        return None;
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let seen = Arc::new(AtomicU64::new(fingerprint(&settings)));
    let weak = Arc::downgrade(live);
    let watch = DirWatch::start("config", &paths, move || {
        let Some(live) = weak.upgrade() else {
            return false;
        };
        let now = fingerprint(&settings);
        if seen.swap(now, Ordering::AcqRel) != now {
            runtime.spawn(async move {
                live.reload("file change").await;
            });
        }
        true
    });
    match watch {
        Ok(w) => {
            let list: Vec<String> = paths.iter().map(|p| p.path.display().to_string()).collect();
            tracing::info!(paths = ?list, "watching the configuration for changes");
            Some(w)
        }
        Err(e) => {
            tracing::warn!("configuration hot reload is off: {e}");
            None
        }
    }
}
