//! The long-lived parts of the gateway, outside any one snapshot: upstream
//! channels (keyed by URL and settings), the mock's stateful store, the
//! stub directory's watch, and the hooks. A reload builds its snapshot from
//! them, reusing what its configuration did not change, and
//! [`Resources::commit`] lets go of what the new snapshot no longer uses
//! (an abandoned channel drains once the last in-flight call on it ends).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use prost_reflect::DescriptorPool;

use super::Gateway;
use crate::config::Config;
use crate::descriptors::Reflected;
use crate::limits::rate::RateBuckets;
use crate::pipeline::shed::ShedLimits;
use crate::pipeline::{Hook, Hooks};
use crate::routing::rules::Route;
use crate::upstream::mock::journal::Journal;
use crate::upstream::mock::state::CrudStore;
use crate::upstream::mock::stubs::{StubError, StubStore};
use crate::upstream::resolve::{self, Resolve};
use crate::upstream::{GrpcUpstream, Transport};
use crate::watch::{DirWatch, WatchPath};

/// A channel is reused when the URL and every setting it was built with match.
type ChannelKey = (String, usize, Transport);

/// See the module docs. Cheap to share: everything inside is behind locks.
#[derive(Default)]
pub struct Resources {
    hooks: Hooks,
    channels: Mutex<HashMap<ChannelKey, GrpcUpstream>>,
    /// The mock's CRUD store and the fingerprint of the descriptors it holds
    /// messages of: new descriptors mean a new store.
    mock_state: Mutex<Option<(u64, Arc<CrudStore>)>>,
    stubs: StubSlot,
    /// The last files each reflection server sent: a reload while a server
    /// is briefly down keeps its services instead of dropping them.
    reflected: Mutex<Reflected>,
    /// Resolves upstream host names (`None`: the system's resolver).
    resolver: Option<Arc<dyn Resolve>>,
    /// The load-shedding limits, kept across reloads so that calls and
    /// streams in flight stay counted.
    shed_limits: ShedLimits,
    /// The rate limits' buckets: an unchanged limit keeps them on reload.
    rate_buckets: RateBuckets,
    /// The mock's request journal: a reload keeps what calls it recorded.
    mock_journal: Arc<Journal>,
}

/// The stub store currently serving, and the one watch of its directory,
/// which reloads whichever store is current.
#[derive(Default)]
struct StubSlot {
    current: Arc<ArcSwapOption<StubStore>>,
    watch: Mutex<Option<(PathBuf, DirWatch)>>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("hooks", &self.hooks)
            .field("channels", &lock(&self.channels).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing inside can be left half-updated by a panic: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Resources {
    /// Resources whose snapshots run `hooks` at the dispatch seam.
    pub fn with_hooks(hooks: Vec<Arc<dyn Hook>>) -> Resources {
        Resources {
            hooks: Hooks::new(hooks),
            ..Resources::default()
        }
    }

    /// These resources, with upstream names resolved by `resolver` instead
    /// of the system's resolver (a test's, mapping names to loopback).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Resources {
        self.resolver = Some(resolver);
        self
    }

    /// The hooks every snapshot runs.
    pub fn hooks(&self) -> Hooks {
        self.hooks.clone()
    }

    /// The load-shedding limits snapshots take their slots from.
    pub fn shed_limits(&self) -> &ShedLimits {
        &self.shed_limits
    }

    /// The buckets of the rate limits in use (`rate_limits:`).
    pub fn rate_buckets(&self) -> &RateBuckets {
        &self.rate_buckets
    }

    /// What reflection sources have provided so far.
    pub fn reflected(&self) -> Reflected {
        lock(&self.reflected).clone()
    }

    /// Asks every reflection server in `urls` for its descriptors. A server
    /// that answers replaces what it sent before; one that does not keeps
    /// its last answer (a reload while it restarts does not drop its
    /// services), or is recorded as missing if it never answered. Returns
    /// true when any server's description changed.
    /// An `https://` server is reached with the TLS settings of the
    /// upstream at that URL in `config`.
    pub async fn refresh_reflection(&self, urls: &[String], config: &Config) -> bool {
        let max = usize::try_from(config.limits.max_response_bytes.0).unwrap_or(usize::MAX);
        let fetched = futures_util::future::join_all(urls.iter().map(|u| async move {
            let fetched = match self.channel(u, max, &super::upstreams::transport_for(config, u)) {
                Ok(upstream) => crate::descriptors::reflection::fetch(&upstream).await,
                Err(e) => Err(e),
            };
            (u.clone(), fetched)
        }))
        .await;
        let mut cache = lock(&self.reflected);
        let mut changed = false;
        for (url, result) in fetched {
            match result {
                Ok(f) => {
                    changed |= !matches!(cache.get(&url), Some(Ok(old)) if *old == f);
                    cache.insert(url, Ok(f));
                }
                Err(why) => match cache.get(&url) {
                    Some(Ok(_)) => tracing::warn!(
                        url,
                        "reflection failed ({why}); keeping the descriptors it sent before"
                    ),
                    _ => {
                        tracing::warn!(url, "reflection failed: {why}");
                        cache.insert(url, Err(why));
                    }
                },
            }
        }
        changed
    }

    /// The channels to `url` (reused when some with the same settings exist).
    pub(crate) fn channel(
        &self,
        url: &str,
        max_response_bytes: usize,
        transport: &Transport,
    ) -> Result<GrpcUpstream, String> {
        let key = (url.to_string(), max_response_bytes, transport.clone());
        let mut channels = lock(&self.channels);
        if let Some(c) = channels.get(&key) {
            return Ok(c.clone());
        }
        let resolver = self.resolver.clone().unwrap_or_else(resolve::system);
        let c = GrpcUpstream::new(url, max_response_bytes, transport, resolver)?;
        channels.insert(key, c.clone());
        Ok(c)
    }

    /// A channel to `url` a snapshot built with `max_response_bytes` uses.
    pub(crate) fn upstream(&self, url: &str, max_response_bytes: usize) -> Option<GrpcUpstream> {
        lock(&self.channels)
            .iter()
            .find(|((u, max, _), _)| u == url && *max == max_response_bytes)
            .map(|(_, c)| c.clone())
    }

    /// The mock's CRUD store: the current one while the descriptors are the
    /// same, else a new, empty one (old messages would not fit new types).
    pub(crate) fn mock_state(&self, pool: &DescriptorPool) -> Arc<CrudStore> {
        let fingerprint = fingerprint(pool);
        let mut slot = lock(&self.mock_state);
        match slot.as_ref() {
            Some((f, store)) if *f == fingerprint => store.clone(),
            _ => {
                let store = Arc::new(CrudStore::new());
                if slot.is_some() {
                    tracing::info!("descriptors changed: the mock's stateful store starts empty");
                }
                *slot = Some((fingerprint, store.clone()));
                store
            }
        }
    }

    /// The mock's request journal, the same for every snapshot.
    pub(crate) fn mock_journal(&self) -> Arc<Journal> {
        self.mock_journal.clone()
    }

    /// The stubs for a snapshot: loaded from `dir` against its descriptors
    /// and routes, keeping the remaining uses of unchanged stubs.
    pub(crate) fn stubs_for(
        &self,
        dir: Option<&Path>,
        pool: &DescriptorPool,
        routes: &[Route],
    ) -> Result<Arc<StubStore>, StubError> {
        let Some(dir) = dir else {
            return Ok(Arc::new(StubStore::empty(pool)));
        };
        let store = StubStore::load_with_routes(dir, pool, routes)?;
        if let Some(previous) = self.stubs.current.load_full()
            && previous.dir() == Some(dir)
        {
            store.inherit_counts(&previous);
        }
        Ok(Arc::new(store))
    }

    /// `gw` is now the live snapshot: its stubs become the ones the watch
    /// reloads (starting the watch if the directory is new), and channels
    /// it does not use are let go.
    pub fn commit(&self, gw: &Gateway) {
        lock(&self.channels).retain(|_, c| gw.channels.iter().any(|u| u.same_as(c)));
        self.shed_limits.commit(&gw.shedding);
        let store = gw
            .mock
            .as_ref()
            .map(|m| m.stubs().clone())
            .filter(|s| s.dir().is_some());
        self.stubs.install(store);
    }
}

impl StubSlot {
    fn install(&self, store: Option<Arc<StubStore>>) {
        let dir = store.as_ref().and_then(|s| s.dir().map(Path::to_path_buf));
        self.current.store(store);
        let mut watch = lock(&self.watch);
        if watch.as_ref().map(|(d, _)| d) == dir.as_ref() {
            return;
        }
        *watch = None;
        let Some(dir) = dir else { return };
        let current = Arc::downgrade(&self.current);
        let started = DirWatch::start(
            "stubs",
            &[WatchPath {
                path: dir.clone(),
                recursive: true,
            }],
            move || {
                let Some(slot) = current.upgrade() else {
                    return false;
                };
                if let Some(store) = slot.load_full() {
                    store.reload_logged();
                }
                true
            },
        );
        match started {
            Ok(w) => *watch = Some((dir, w)),
            Err(e) => tracing::warn!("stub hot reload is off: {e}"),
        }
    }
}

/// A hash of every file in the pool.
fn fingerprint(pool: &DescriptorPool) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pool.encode_to_vec().hash(&mut h);
    h.finish()
}
