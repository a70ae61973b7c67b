//! Local rate limits (`rate_limits:`): token buckets (governor's GCRA)
//! checked at the dispatch seam, after auth (so `key: subject` sees the
//! verified token) and before the backend.
//!
//! Each limit is compiled at load time onto the destinations it names
//! (every gRPC method and REST route, [`Selection`] as `auth.rules`), so a
//! call whose destination no limit names costs one map lookup. A call
//! takes one token from every limit that names its destination, in order;
//! the first limit without a token refuses it with
//! [`GatewayError::RateLimited`] (429 RESOURCE_EXHAUSTED, `Retry-After`),
//! counted in `protogate_rate_limited_total{limit}`. A stream counts once,
//! when it opens.
//!
//! A limit with a key keeps one bucket per key value: the client's IP
//! address, a request header's value, or the verified subject (calls
//! without the header or subject share one bucket). Values are hashed with
//! a per-limit random key (64 bits per key, whatever the value's length).
//! Keys whose bucket is full again are swept every [`SWEEP_EVERY`] (and
//! at once, at most every second, when the limit is full); at most
//! `max_keys` are held, and new keys past that share one overflow bucket
//! at the limit's rate until a sweep makes room: a flood of new keys is
//! limited together rather than let through or let grow memory.
//!
//! The buckets live in [`RateBuckets`] (kept by
//! [`crate::gateway::Resources`]), so a reload that leaves a limit exactly
//! as it was keeps its buckets (and the clients' spent tokens); a limit
//! whose definition changed in any field starts with full buckets.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};

use crate::auth::Subject;
use crate::auth::policy::{Destination, Selection};
use crate::call::Call;
use crate::config::{RateKey, RateLimitConfig};
use crate::pipeline::{CallInfo, ClientAddr, Hook, Target};
use crate::routing::rules::RuleError;
use crate::status::GatewayError;

/// How often idle keys are swept from keyed limits.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The least time between two sweeps a full limit runs inline.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The rate-limit hook of one snapshot: per destination (target id), the
/// limits that count its calls.
pub struct RateLimits {
    by_target: HashMap<u64, Box<[Arc<Limit>]>, BuildHasherDefault<IdHasher>>,
    limits: Vec<Arc<Limit>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("limits", &self.limits.len())
            .field("destinations", &self.by_target.len())
            .finish()
    }
}

impl RateLimits {
    /// Compiles `configs` onto `targets` (every method target and route
    /// target of a snapshot), taking each limit's buckets from `buckets`
    /// (the same ones as before when the limit is unchanged). `None` when
    /// no limit is configured. Errors name the limit's field.
    pub fn build<'a>(
        configs: &[RateLimitConfig],
        targets: impl Iterator<Item = &'a Target>,
        known_routes: &[&str],
        buckets: &RateBuckets,
    ) -> Result<Option<RateLimits>, Vec<RuleError>> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let mut selections = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            match Selection::compile(c.selector.as_deref(), c.route.as_deref(), known_routes) {
                Ok(s) => selections.push(s),
                Err(message) => errors.push(RuleError {
                    rule: format!(
                        "rate_limits[{i}].{}",
                        if c.route.is_some() && !message.starts_with("selector") {
                            "route"
                        } else {
                            "selector"
                        }
                    ),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let limits: Vec<Arc<Limit>> = configs.iter().map(|c| buckets.limit(c)).collect();
        let mut used = vec![false; limits.len()];
        let mut by_target = HashMap::default();
        for t in targets {
            let d = Destination {
                key: "",
                method: t.method.full_name(),
                route: t.route.as_deref(),
            };
            let matching: Box<[Arc<Limit>]> = selections
                .iter()
                .zip(&limits)
                .enumerate()
                .filter(|(_, (s, _))| s.matches(&d))
                .map(|(i, (_, l))| {
                    used[i] = true;
                    l.clone()
                })
                .collect();
            if !matching.is_empty() {
                by_target.insert(t.id, matching);
            }
        }
        for (i, c) in configs.iter().enumerate().filter(|(i, _)| !used[*i]) {
            tracing::warn!(
                "rate_limits[{i}] ({}) names no method or route of this gateway",
                c.name
            );
        }
        Ok(Some(RateLimits { by_target, limits }))
    }

    /// The limits, in configuration order.
    pub fn limits(&self) -> &[Arc<Limit>] {
        &self.limits
    }
}

impl Hook for RateLimits {
    fn on_call(&self, call: &mut Call, info: &CallInfo<'_>) -> Result<(), GatewayError> {
        let Some(limits) = self.by_target.get(&info.target.id) else {
            return Ok(());
        };
        limits.iter().try_for_each(|l| l.admit(call, info))
    }
}

/// The buckets of every limit in use, by definition: a snapshot built with
/// a limit exactly like one a live snapshot has shares its buckets.
#[derive(Default)]
pub struct RateBuckets(Mutex<HashMap<RateLimitConfig, Weak<Limit>>>);

impl std::fmt::Debug for RateBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateBuckets")
    }
}

impl RateBuckets {
    /// The limit defined by `config`: the live one if there is one, else new.
    fn limit(&self, config: &RateLimitConfig) -> Arc<Limit> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, l| l.strong_count() > 0);
        if let Some(live) = all.get(config).and_then(Weak::upgrade) {
            return live;
        }
        let limit = Limit::new(config.clone());
        all.insert(config.clone(), Arc::downgrade(&limit));
        limit
    }
}

/// One limit and its buckets.
pub struct Limit {
    config: RateLimitConfig,
    /// `"name" (100/s per ip)`, for the error's message.
    described: Arc<str>,
    buckets: Buckets,
}

enum Buckets {
    /// `key: none`.
    One(RateLimiter<NotKeyed, InMemoryState, DefaultClock, NoOpMiddleware<Instant2>>),
    /// A bucket per key.
    Keyed(Keyed),
}

type Instant2 = <DefaultClock as Clock>::Instant;

struct Keyed {
    limiter: RateLimiter<u64, Capped, DefaultClock, NoOpMiddleware<Instant2>>,
    /// Hashes key values (random per limit: clients cannot aim at a key).
    hasher: RandomState,
    /// A new key was sent to the overflow bucket since the last sweep
    /// (shared with the store).
    overflowing: Arc<AtomicBool>,
    /// When the last inline sweep ran, in ms since `born`.
    last_sweep: AtomicU64,
    born: Instant,
}

impl std::fmt::Debug for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limit")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Limit {
    fn new(config: RateLimitConfig) -> Arc<Limit> {
        let burst = NonZeroU32::new(config.burst()).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(config.rate.interval())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let per = match &config.key {
            RateKey::None => String::new(),
            key => format!(" per {key}"),
        };
        let described = format!("{:?} ({}{per})", config.name, config.rate).into();
        let buckets = match config.key {
            RateKey::None => Buckets::One(RateLimiter::direct_with_clock(
                quota,
                DefaultClock::default(),
            )),
            _ => {
                let overflowing = Arc::new(AtomicBool::new(false));
                Buckets::Keyed(Keyed {
                    limiter: RateLimiter::new(
                        quota,
                        Capped::new(config.max_keys, overflowing.clone()),
                        DefaultClock::default(),
                    ),
                    hasher: RandomState::new(),
                    overflowing,
                    last_sweep: AtomicU64::new(0),
                    born: Instant::now(),
                })
            }
        };
        let limit = Arc::new(Limit {
            config,
            described,
            buckets,
        });
        if matches!(limit.buckets, Buckets::Keyed(_))
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(sweep_while_alive(Arc::downgrade(&limit)));
        }
        limit
    }

    /// The limit's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// How many keys hold a bucket now (0 for a limit without a key).
    pub fn keys(&self) -> usize {
        match &self.buckets {
            Buckets::One(_) => 0,
            Buckets::Keyed(k) => k.limiter.len(),
        }
    }

    /// Drops the buckets of keys that are full again (indistinguishable
    /// from new ones) and gives back the memory they held.
    pub fn sweep(&self) {
        let Buckets::Keyed(k) = &self.buckets else {
            return;
        };
        let before = k.limiter.len();
        k.limiter.retain_recent();
        let after = k.limiter.len();
        if after < before / 2 {
            k.limiter.shrink_to_fit();
        }
        k.overflowing.store(false, Ordering::Relaxed);
        metrics::gauge!("protogate_rate_limit_keys", "limit" => self.config.name.clone())
            .set(after as f64);
    }

    /// Takes a token for `call`, or refuses it.
    fn admit(&self, call: &Call, info: &CallInfo<'_>) -> Result<(), GatewayError> {
        let refused = match &self.buckets {
            Buckets::One(limiter) => match limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => not_until.wait_time_from(limiter.clock().now()),
            },
            Buckets::Keyed(k) => {
                let key = self.key(k, call, info);
                let checked = k.limiter.check_key(&key);
                if k.overflowing.load(Ordering::Relaxed) {
                    self.sweep_when_full(k);
                }
                match checked {
                    Ok(()) => return Ok(()),
                    Err(not_until) => not_until.wait_time_from(k.limiter.clock().now()),
                }
            }
        };
        metrics::counter!("protogate_rate_limited_total", "limit" => self.config.name.clone())
            .increment(1);
        Err(GatewayError::RateLimited {
            limit: self.described.clone(),
            retry_after: refused,
        })
    }

    /// The call's key, hashed.
    fn key(&self, k: &Keyed, call: &Call, info: &CallInfo<'_>) -> u64 {
        let mut h = k.hasher.build_hasher();
        match &self.config.key {
            RateKey::None => {}
            RateKey::Ip => {
                let ip: Option<IpAddr> = call.extensions.get::<ClientAddr>().map(|a| a.0.ip());
                ip.map(|ip| ip.to_canonical()).hash(&mut h);
            }
            RateKey::Header(name) => info.headers.get(name).map(|v| v.as_bytes()).hash(&mut h),
            RateKey::Subject => call
                .extensions
                .get::<Subject>()
                .map(|s| s.0.as_str())
                .hash(&mut h),
        }
        h.finish()
    }

    /// The limit holds `max_keys` keys and a new one came: sweep now
    /// (at most every [`FULL_SWEEP_EVERY`]), so idle keys make room.
    fn sweep_when_full(&self, k: &Keyed) {
        let now = u64::try_from(k.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = k.last_sweep.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= FULL_SWEEP_EVERY.as_millis() as u64;
        if due
            && k.last_sweep
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                limit = %self.config.name,
                max_keys = self.config.max_keys,
                "rate limit holds max_keys keys: new keys share one overflow bucket until idle keys are swept"
            );
            self.sweep();
        }
    }
}

/// Sweeps `limit` every [`SWEEP_EVERY`] for as long as a snapshot uses it.
async fn sweep_while_alive(limit: Weak<Limit>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(limit) = limit.upgrade() else { return };
        limit.sweep();
    }
}

/// Keyed buckets with a ceiling: governor's DashMap store, plus one
/// overflow bucket that new keys share once `max_keys` are held.
pub(crate) struct Capped {
    map: DashMapStateStore<u64, BuildHasherDefault<IdHasher>>,
    overflow: InMemoryState,
    max_keys: usize,
    /// Set when a new key is sent to the overflow bucket.
    overflowing: Arc<AtomicBool>,
}

impl Capped {
    fn new(max_keys: usize, overflowing: Arc<AtomicBool>) -> Capped {
        Capped {
            map: DashMapStateStore::default(),
            overflow: InMemoryState::default(),
            max_keys,
            overflowing,
        }
    }
}

impl StateStore for Capped {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(bucket) = self.map.get(key) {
            return bucket.measure_and_replace(&NotKeyed::NonKey, f);
        }
        // Several new keys at once may pass this check together: the
        // ceiling can be overshot by the number of threads, never more.
        if self.map.len() >= self.max_keys {
            self.overflowing.store(true, Ordering::Relaxed);
            return self.overflow.measure_and_replace(&NotKeyed::NonKey, f);
        }
        let bucket = self.map.entry(*key).or_default();
        bucket.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

impl ShrinkableKeyedStateStore<u64> for Capped {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        self.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// For keys that are already hashes (or small unique ids): one
/// multiplication spreads them over the table's bits.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests;
