//! Metric handles registered once per series and reused: looking a series
//! up by its labels (building the label strings, hashing them, finding them
//! in the recorder) on every request cost more than the recording itself.
//! The series of a request's outcome are keyed by destination
//! ([`Target::id`](crate::pipeline::Target::id)), protocol, gRPC code and
//! HTTP status; a configuration reload empties the cache (new targets, new
//! ids).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use metrics::{Counter, Histogram};

/// What identifies one request outcome's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// The target's id; 0 when nothing was resolved.
    pub target: u64,
    /// The protocol, as its label.
    pub protocol: &'static str,
    /// The gRPC code.
    pub code: i32,
    /// The HTTP status.
    pub status: u16,
}

/// The handles one outcome records to.
pub struct Series {
    /// `protogate_requests_total`.
    pub requests: Counter,
    /// `protogate_request_duration_seconds` (unary calls only).
    pub duration: Option<Histogram>,
    /// `protogate_request_size_bytes` and `protogate_response_size_bytes`.
    pub sizes: Option<(Histogram, Histogram)>,
    /// `protogate_upstream_request_duration_seconds`.
    pub upstream: Option<Histogram>,
}

/// Bumped by every reload; a cache that sees a new value starts over.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Forgets every cached series (their targets are gone after a reload).
pub fn invalidate() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// See the module docs.
#[derive(Default)]
pub struct SeriesCache {
    map: RwLock<(u64, HashMap<SeriesKey, Arc<Series>>)>,
}

impl SeriesCache {
    /// The series of `key`, registered by `make` the first time.
    pub fn get(&self, key: SeriesKey, make: impl FnOnce() -> Series) -> Arc<Series> {
        let generation = GENERATION.load(Ordering::Relaxed);
        if let Ok(map) = self.map.read()
            && map.0 == generation
            && let Some(s) = map.1.get(&key)
        {
            return s.clone();
        }
        let series = Arc::new(make());
        let Ok(mut map) = self.map.write() else {
            return series;
        };
        if map.0 != generation {
            *map = (generation, HashMap::new());
        }
        map.1.entry(key).or_insert(series).clone()
    }
}
