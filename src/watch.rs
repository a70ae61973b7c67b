//! Debounced filesystem watching, for hot reload of stubs and of the
//! configuration: a burst of changes (an editor's truncate-write-rename, a
//! Kubernetes ConfigMap's `..data` symlink swap) becomes one callback, run
//! on a background thread once the paths have been quiet for a moment.
//!
//! Watch *directories*: a ConfigMap update replaces a symlink in the mounted
//! directory and never touches the file the application opened.

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// How long the paths must be quiet before the callback runs.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

enum Msg {
    Changed,
    Stop,
}

/// One path to watch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchPath {
    /// A directory (or file).
    pub path: PathBuf,
    /// Watch everything below it, not only its direct entries.
    pub recursive: bool,
}

/// A running watch; dropping it stops the watch and its thread.
pub struct DirWatch {
    stop: Sender<Msg>,
    _watcher: RecommendedWatcher,
}

impl fmt::Debug for DirWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirWatch").finish_non_exhaustive()
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        // The watcher's own sender may outlive it briefly; say stop explicitly.
        let _ = self.stop.send(Msg::Stop);
    }
}

impl DirWatch {
    /// Watches `paths` and calls `on_change` after each burst of changes
    /// (reads are ignored). Fails naming the first path that cannot be
    /// watched. `on_change` returns false to end the watch.
    pub fn start(
        name: &str,
        paths: &[WatchPath],
        on_change: impl FnMut() -> bool + Send + 'static,
    ) -> Result<DirWatch, String> {
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => {}
                Ok(_) => {
                    let _ = events.send(Msg::Changed);
                }
                Err(e) => tracing::warn!(error = %e, "filesystem watch error"),
            })
            .map_err(|e| format!("cannot watch: {e}"))?;
        for p in paths {
            let mode = if p.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher
                .watch(&p.path, mode)
                .map_err(|e| format!("{}: cannot watch: {e}", p.path.display()))?;
        }
        std::thread::Builder::new()
            .name(format!("protogate-watch-{name}"))
            .spawn(move || run(&rx, on_change))
            .map_err(|e| format!("cannot start the {name} watch thread: {e}"))?;
        Ok(DirWatch {
            stop: tx,
            _watcher: watcher,
        })
    }
}

fn run(rx: &Receiver<Msg>, mut on_change: impl FnMut() -> bool) {
    while let Ok(Msg::Changed) = rx.recv() {
        loop {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(Msg::Changed) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if !on_change() {
            return;
        }
    }
}
