//! Hot reload of the stub directory: a recursive, debounced watch
//! ([`crate::watch`]) that reloads the store until the guard drops.

use std::sync::Arc;

use super::{StubError, StubStore};
use crate::watch::{DirWatch, WatchPath};

/// Keeps a [`StubStore::watch`] running; dropping it stops the watch.
pub type WatchGuard = DirWatch;

impl StubStore {
    /// Watches the stub directory and reloads on every change (debounced),
    /// logging like [`reload_logged`](Self::reload_logged). The watch holds
    /// no strong reference to the store and stops when the guard drops.
    pub fn watch(self: &Arc<Self>) -> Result<WatchGuard, StubError> {
        let dir = self
            .dir
            .clone()
            .ok_or_else(|| StubError("no stub directory to watch".into()))?;
        let store = Arc::downgrade(self);
        DirWatch::start(
            "stubs",
            &[WatchPath {
                path: dir,
                recursive: true,
            }],
            move || match store.upgrade() {
                Some(s) => {
                    s.reload_logged();
                    true
                }
                None => false,
            },
        )
        .map_err(StubError)
    }

    /// Reloads, logging `info` with the stub count on success and one
    /// `error` per problem on failure, when the previous stubs keep serving.
    pub fn reload_logged(&self) {
        let dir = self.dir.as_deref().map(|d| d.display().to_string());
        match self.reload() {
            Ok(n) => tracing::info!(dir = dir.as_deref(), stubs = n, "reloaded mock stubs"),
            Err(e) => {
                for problem in e.0.lines() {
                    tracing::error!(dir = dir.as_deref(), "{problem}");
                }
                tracing::error!(
                    dir = dir.as_deref(),
                    stubs = self.len(),
                    "stub reload failed; keeping the previous stubs"
                );
            }
        }
    }
}
