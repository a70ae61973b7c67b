//! Hot reload: a recursive filesystem watch on the stub directory, debounced,
//! reloading the store on a background thread until the guard drops.

use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::{StubError, StubStore};

/// Quiet time after the last change before reloading: editors save in
/// several steps (truncate, write, rename), and a burst is one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

enum Msg {
    Changed,
    Stop,
}

/// Keeps a [`StubStore::watch`] running; dropping it stops the watch.
pub struct WatchGuard {
    stop: Sender<Msg>,
    _watcher: RecommendedWatcher,
}

impl fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchGuard").finish_non_exhaustive()
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        // The watcher's own sender may outlive it briefly; say stop explicitly.
        let _ = self.stop.send(Msg::Stop);
    }
}

impl StubStore {
    /// Watches the stub directory and reloads on every change (debounced
    /// ~200 ms), logging `info` with the stub count on success and one
    /// `error` per problem on failure, when the previous stubs keep serving.
    /// The watch holds no strong reference to the store and stops when the
    /// guard drops.
    pub fn watch(self: &Arc<Self>) -> Result<WatchGuard, StubError> {
        let dir = self
            .dir
            .clone()
            .ok_or_else(|| StubError("no stub directory to watch".into()))?;
        let cannot =
            |e: &dyn fmt::Display| StubError(format!("{}: cannot watch: {e}", dir.display()));
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            match res {
                // Reads (open/close without writing) change nothing.
                Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => {}
                Ok(_) => {
                    let _ = events.send(Msg::Changed);
                }
                Err(e) => tracing::warn!(error = %e, "stub directory watch error"),
            }
        })
        .map_err(|e| cannot(&e))?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|e| cannot(&e))?;
        let store = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("protogate-stub-watch".into())
            .spawn(move || run(&store, &rx))
            .map_err(|e| cannot(&e))?;
        Ok(WatchGuard {
            stop: tx,
            _watcher: watcher,
        })
    }
}

fn run(store: &Weak<StubStore>, rx: &Receiver<Msg>) {
    while let Ok(Msg::Changed) = rx.recv() {
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(Msg::Changed) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let Some(store) = store.upgrade() else { return };
        let dir = store.dir.as_deref().map(|d| d.display().to_string());
        match store.reload() {
            Ok(n) => tracing::info!(dir = dir.as_deref(), stubs = n, "reloaded mock stubs"),
            Err(e) => {
                for problem in e.0.lines() {
                    tracing::error!(dir = dir.as_deref(), "{problem}");
                }
                tracing::error!(
                    dir = dir.as_deref(),
                    stubs = store.len(),
                    "stub reload failed; keeping the previous stubs"
                );
            }
        }
    }
}
