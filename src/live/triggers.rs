//! What starts a reload besides the admin endpoint: SIGHUP, and changes to
//! routes.yaml and the descriptor files.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

/// How often to look again whether reflection needs following, when it
/// does not now (the configuration may change on reload).
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Retry delays while a reflection server has never answered.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Keeps descriptors from reflection current, for as long as `live` lives:
/// while a server has never answered, retries with backoff (1 s doubling to
/// 30 s); otherwise asks again every `reload.reflection_interval` (when
/// set). Reloads when what a server describes changed.
pub fn follow_reflection(live: &Arc<Live>) {
    let weak = Arc::downgrade(live);
    tokio::spawn(async move {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let Some(plan) = weak.upgrade().map(|l| Plan::of(&l, backoff)) else {
                return;
            };
            tokio::time::sleep(plan.wait).await;
            let Some(live) = weak.upgrade() else { return };
            if !plan.fetch {
                continue;
            }
            let config = live.current().config.clone();
            if live.resources.refresh_reflection(&plan.urls, &config).await {
                live.reload_fetched("reflection").await;
            }
            backoff = match live.current().missing.is_empty() {
                true => BACKOFF_FIRST,
                false => (backoff * 2).min(BACKOFF_MAX),
            };
        }
    });
}

/// What the reflection follower does next.
struct Plan {
    wait: Duration,
    fetch: bool,
    urls: Vec<String>,
}

impl Plan {
    fn of(live: &Live, backoff: Duration) -> Plan {
        let gw = live.current();
        let interval = gw.config.reload.reflection_interval.0;
        let urls = gw.reflection_urls.clone();
        let (wait, fetch) = if urls.is_empty() {
            (IDLE_CHECK, false)
        } else if !gw.missing.is_empty() {
            (backoff, true)
        } else if !interval.is_zero() {
            (interval, true)
        } else {
            (IDLE_CHECK, false)
        };
        Plan { wait, fetch, urls }
    }
}
