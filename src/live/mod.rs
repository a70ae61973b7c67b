//! Live configuration: the serving [`Gateway`] snapshot behind an atomic
//! swap, and reload.
//!
//! A reload (SIGHUP, `POST /_protogate/reload`, a watched file changing, new
//! descriptors from reflection) builds a whole new snapshot beside the
//! serving one and swaps it in. Requests and streams in flight keep the
//! snapshot they started with; new requests see the new one. A reload that
//! fails validation changes nothing: the old snapshot keeps serving, and
//! every problem is logged and reported.

mod diff;
mod inputs;
mod triggers;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;

pub use diff::Changes;
pub use inputs::{fingerprint, watch_paths};

use crate::gateway::{Gateway, LoadError, Resources, Settings};
use crate::health::Health;

/// The gateway as it is now, and how to rebuild it.
pub struct Live {
    current: ArcSwap<Gateway>,
    settings: Option<Settings>,
    resources: Arc<Resources>,
    /// One reload at a time; concurrent triggers queue.
    reloading: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    stats: ReloadStats,
    /// Upstream probers and the drain state: follows every snapshot.
    health: Health,
}

/// Reload counters and the latest report (for `GET /_protogate/reload` and
/// metrics).
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads that swapped in a new snapshot.
    pub succeeded: AtomicU64,
    /// Reloads refused (the old snapshot kept serving).
    pub failed: AtomicU64,
    last: Mutex<Option<ReloadReport>>,
}

impl ReloadStats {
    /// The latest reload's report, if any.
    pub fn last(&self) -> Option<ReloadReport> {
        self.last.lock().ok().and_then(|l| l.clone())
    }
}

/// What one reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// Whether a new snapshot now serves.
    pub ok: bool,
    /// What asked for it: `SIGHUP`, `admin`, `file change`, `reflection`.
    pub trigger: String,
    /// The generation serving after the reload (1 is the startup snapshot).
    pub generation: u64,
    /// How long building (and swapping) took.
    pub duration_ms: f64,
    /// Routes served after the reload.
    pub routes: usize,
    /// What changed, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    /// Every problem, on failure (as `protogate check` lists them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Rules the new snapshot skips (not served), with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Loads the gateway from `settings` (files, descriptors, reflection
    /// servers) and keeps the settings for reloads. A reflection server that
    /// is down does not stop the start: see [`follow_reflection`].
    pub async fn load(
        settings: Settings,
        resources: Arc<Resources>,
    ) -> Result<Arc<Live>, LoadError> {
        let config = settings.config()?;
        let urls = settings.reflection_urls(&config);
        resources.refresh_reflection(&urls, &config).await;
        let (s, r) = (settings.clone(), resources.clone());
        let gw = tokio::task::spawn_blocking(move || Gateway::load_with(&s, &r))
            .await
            .map_err(|e| LoadError::Task(e.to_string()))??;
        Ok(Live::start(gw, Some(settings), resources))
    }

    /// A gateway that was built in code: it serves, but cannot reload.
    pub fn fixed(gw: Gateway) -> Arc<Live> {
        Live::start(gw, None, Arc::new(Resources::default()))
    }

    /// Like [`fixed`](Self::fixed), with the resources it was built from
    /// (their hooks and stub watch apply).
    pub fn fixed_with(gw: Gateway, resources: Arc<Resources>) -> Arc<Live> {
        Live::start(gw, None, resources)
    }

    fn start(gw: Gateway, settings: Option<Settings>, resources: Arc<Resources>) -> Arc<Live> {
        report_skipped(&gw);
        resources.commit(&gw);
        let health = Health::default();
        health.track(&gw, &resources);
        Arc::new(Live {
            current: ArcSwap::from_pointee(gw),
            settings,
            resources,
            reloading: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            stats: ReloadStats::default(),
            health,
        })
    }

    /// Readiness, upstream health and the drain ([`crate::health`]).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The snapshot serving now; hold it for the whole request.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// The serving snapshot's generation: 1 at startup, +1 per successful reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reload counters.
    pub fn stats(&self) -> &ReloadStats {
        &self.stats
    }

    /// The settings reloads read, when the gateway was loaded from files.
    pub fn settings(&self) -> Option<&Settings> {
        self.settings.as_ref()
    }

    /// Rebuilds the gateway from its files and swaps it in; on any problem
    /// the serving snapshot stays. Logs one line either way.
    pub async fn reload(&self, trigger: &str) -> ReloadReport {
        self.reload_inner(trigger, true).await
    }

    /// A reload right after reflection was fetched: no second fetch.
    async fn reload_fetched(&self, trigger: &str) -> ReloadReport {
        self.reload_inner(trigger, false).await
    }

    async fn reload_inner(&self, trigger: &str, fetch: bool) -> ReloadReport {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Instant::now();
        let built = match &self.settings {
            Some(settings) => self.rebuild(settings, fetch).await,
            None => Err(vec![
                "this gateway was built in code, not loaded from files: nothing to reload".into(),
            ]),
        };
        let report = match built {
            Ok(new) => self.swap(new, trigger, started),
            Err(problems) => self.refuse(problems, trigger, started),
        };
        if let Ok(mut last) = self.stats.last.lock() {
            *last = Some(report.clone());
        }
        report
    }

    /// Re-reads everything (reflection servers included) into a new snapshot.
    async fn rebuild(&self, settings: &Settings, fetch: bool) -> Result<Gateway, Vec<String>> {
        let problems = |e: LoadError| crate::report::problem_lines(&e);
        let config = settings.config().map_err(|e| problems(e.into()))?;
        if fetch {
            self.resources
                .refresh_reflection(&settings.reflection_urls(&config), &config)
                .await;
        }
        let (settings, resources) = (settings.clone(), self.resources.clone());
        tokio::task::spawn_blocking(move || Gateway::load_with(&settings, &resources))
            .await
            .map_err(|e| vec![format!("reload task failed: {e}")])?
            .map_err(problems)
    }

    fn swap(&self, new: Gateway, trigger: &str, started: Instant) -> ReloadReport {
        let changes = Changes::between(&self.current(), &new);
        let routes = new.routes().len();
        report_skipped(&new);
        let skipped = new.skipped().iter().map(ToString::to_string).collect();
        let new = Arc::new(new);
        // Before it serves, so readiness never sees an upstream not yet tracked.
        self.health.track(&new, &self.resources);
        self.current.store(new.clone());
        self.resources.commit(&new);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        crate::observe::metrics::reload(true);
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            trigger,
            generation,
            routes,
            duration_ms,
            "configuration reloaded: {}",
            changes.summary()
        );
        ReloadReport {
            ok: true,
            trigger: trigger.to_string(),
            generation,
            duration_ms,
            routes,
            changes: Some(changes),
            problems: Vec::new(),
            skipped,
        }
    }

    fn refuse(&self, problems: Vec<String>, trigger: &str, started: Instant) -> ReloadReport {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        crate::observe::metrics::reload(false);
        let generation = self.generation();
        for p in &problems {
            tracing::error!(trigger, "{p}");
        }
        tracing::error!(
            trigger,
            generation,
            problems = problems.len(),
            "reload refused; still serving the previous configuration"
        );
        ReloadReport {
            ok: false,
            trigger: trigger.to_string(),
            generation,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            routes: self.current().routes().len(),
            changes: None,
            problems,
            skipped: Vec::new(),
        }
    }
}

/// Each rule the snapshot skips, at WARN; and their number as a gauge.
fn report_skipped(gw: &Gateway) {
    for s in gw.skipped() {
        s.warn();
    }
    crate::observe::metrics::routes_skipped(gw.skipped().len());
}

pub use triggers::{follow_reflection, reload_on_sighup, watch_files};
