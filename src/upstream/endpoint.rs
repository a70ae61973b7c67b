//! One address of an upstream: a small pool of HTTP/2 connections that
//! grows as calls fill them, the calls in flight, and whether it is in the
//! rotation (ejected after consecutive failures, or failing its health
//! checks).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::uri::Authority;
use tokio::time::Instant;

use super::connection::Connection;
use super::tls::ClientTls;
use crate::config::{EjectionConfig, PoolConfig, UpstreamHttp2};

/// What every connection of an upstream is made with, whatever its address.
#[derive(Clone, Debug)]
pub(crate) struct ConnTemplate {
    pub uri: http::Uri,
    pub tls: Option<Arc<ClientTls>>,
    pub authority: Option<Authority>,
    pub http2: UpstreamHttp2,
    /// Connections opened before any is full (`connections:`).
    pub min_connections: usize,
}

/// One address and its connections.
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    template: ConnTemplate,
    pool: PoolConfig,
    connections: Mutex<Vec<Pooled>>,
    in_flight: AtomicUsize,
    outlier: Mutex<Outlier>,
    /// The last active health check passed (true until one fails).
    healthy: AtomicBool,
}

struct Pooled {
    conn: Connection,
    in_flight: Arc<AtomicUsize>,
    /// The serving thread whose calls use it (`server::shards`): its
    /// connection task runs there, so a call never wakes another thread.
    shard: usize,
}

#[derive(Default)]
struct Outlier {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
    times_ejected: u32,
}

/// A call's hold on its endpoint and connection: counted in flight until
/// dropped (the end of the response stream).
pub(crate) struct InFlight {
    endpoint: Arc<Endpoint>,
    connection: Arc<AtomicUsize>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.connection.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters and handles only: nothing is left half-updated by a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Endpoint {
    pub fn new(addr: SocketAddr, template: ConnTemplate, pool: PoolConfig) -> Endpoint {
        Endpoint {
            addr,
            template,
            pool,
            connections: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            outlier: Mutex::new(Outlier::default()),
            healthy: AtomicBool::new(true),
        }
    }

    /// Calls in flight on it.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Its connections so far.
    #[cfg(test)]
    pub fn connection_count(&self) -> usize {
        lock(&self.connections).len()
    }

    /// The least busy of the calling serving thread's connections, a new one
    /// when each carries `streams_per_connection` calls and the thread's
    /// pool may grow; counted in flight until the returned hold is dropped.
    /// Off the serving threads (probes, reflection, tests) any connection
    /// will do.
    pub fn connection(self: &Arc<Self>) -> (Connection, InFlight) {
        let shard = crate::server::shards::current();
        let mut pool = lock(&self.connections);
        let mut own = 0;
        let least = pool
            .iter()
            .filter(|p| shard == 0 || p.shard == shard)
            .inspect(|_| own += 1)
            .min_by_key(|p| p.in_flight.load(Ordering::Relaxed));
        let full = least.is_none_or(|p| {
            p.in_flight.load(Ordering::Relaxed) >= self.pool.streams_per_connection
        }) || own < self.template.min_connections;
        let max = self.pool.max_connections.max(self.template.min_connections);
        let chosen = match least {
            Some(p) if !full || own >= max => (p.conn.clone(), p.in_flight.clone()),
            _ => {
                let conn = Connection::lazy(
                    self.addr,
                    &self.template.uri,
                    self.template.tls.clone(),
                    self.template.authority.as_ref(),
                    self.template.http2,
                );
                let in_flight = Arc::new(AtomicUsize::new(0));
                pool.push(Pooled {
                    conn: conn.clone(),
                    in_flight: in_flight.clone(),
                    shard,
                });
                (conn, in_flight)
            }
        };
        drop(pool);
        chosen.1.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let hold = InFlight {
            endpoint: self.clone(),
            connection: chosen.1,
        };
        (chosen.0, hold)
    }

    /// Whether calls may pick it now: healthy and not ejected.
    pub fn available(&self, now: Instant) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.ejected(now)
    }

    /// Whether it is ejected now.
    pub fn ejected(&self, now: Instant) -> bool {
        lock(&self.outlier)
            .ejected_until
            .is_some_and(|until| until > now)
    }

    /// Records the last active health check's answer.
    pub fn set_healthy(&self, healthy: bool) {
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            tracing::info!(endpoint = %self.addr, healthy, "upstream endpoint health changed");
        }
    }

    /// Records a call's outcome. A failure that completes a run of
    /// `consecutive_failures` ejects it, when `may_eject` (the share of
    /// ejected endpoints allows one more; asked without holding this
    /// endpoint's lock, since it looks at every endpoint).
    pub fn record(&self, failed: bool, config: &EjectionConfig, may_eject: impl FnOnce() -> bool) {
        if !self.count(failed, config) || !may_eject() {
            return;
        }
        let mut o = lock(&self.outlier);
        let now = Instant::now();
        if o.ejected_until.is_some_and(|until| until > now) {
            return;
        }
        o.times_ejected = o.times_ejected.saturating_add(1);
        let length = ejection_length(config, o.times_ejected);
        o.ejected_until = Some(now + length);
        o.consecutive_failures = 0;
        drop(o);
        tracing::warn!(endpoint = %self.addr, ?length, "upstream endpoint ejected after consecutive failures");
    }

    /// Counts a call's outcome: whether the failures now call for an
    /// ejection.
    fn count(&self, failed: bool, config: &EjectionConfig) -> bool {
        let mut o = lock(&self.outlier);
        if !failed {
            o.consecutive_failures = 0;
            return false;
        }
        o.consecutive_failures = o.consecutive_failures.saturating_add(1);
        let ejected = o.ejected_until.is_some_and(|until| until > Instant::now());
        config.consecutive_failures > 0
            && o.consecutive_failures >= config.consecutive_failures
            && !ejected
    }
}

/// `base_time` × the times ejected, at most `max_time`.
fn ejection_length(config: &EjectionConfig, times: u32) -> Duration {
    config
        .base_time
        .0
        .saturating_mul(times.max(1))
        .min(config.max_time.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigDuration;

    fn endpoint() -> Arc<Endpoint> {
        let template = ConnTemplate {
            uri: "http://127.0.0.1:1".parse().unwrap(),
            tls: None,
            authority: None,
            http2: UpstreamHttp2::default(),
            min_connections: 1,
        };
        let pool = PoolConfig {
            streams_per_connection: 2,
            max_connections: 3,
        };
        Arc::new(Endpoint::new(
            "127.0.0.1:1".parse().unwrap(),
            template,
            pool,
        ))
    }

    #[tokio::test]
    async fn the_pool_grows_when_connections_are_full_and_shrinks_its_load_on_drop() {
        let e = endpoint();
        let holds: Vec<_> = (0..7).map(|_| e.connection().1).collect();
        // 2 streams each on 3 connections, then the least busy takes more.
        assert_eq!(e.connection_count(), 3);
        assert_eq!(e.in_flight(), 7);
        drop(holds);
        assert_eq!(e.in_flight(), 0);
        let _one = e.connection();
        assert_eq!(e.connection_count(), 3, "idle connections are reused");
    }

    #[tokio::test]
    async fn consecutive_failures_eject_for_longer_each_time() {
        let e = endpoint();
        let config = EjectionConfig {
            consecutive_failures: 3,
            base_time: ConfigDuration(Duration::from_secs(10)),
            max_time: ConfigDuration(Duration::from_secs(25)),
            max_ejected_percent: 50,
        };
        let now = Instant::now();
        e.record(true, &config, || true);
        e.record(true, &config, || true);
        e.record(false, &config, || true);
        e.record(true, &config, || true);
        e.record(true, &config, || true);
        assert!(e.available(now), "a success resets the run");
        e.record(true, &config, || false);
        assert!(e.available(now), "not when too many are ejected");
        e.record(true, &config, || true);
        assert!(!e.available(Instant::now()));
        assert!(e.available(Instant::now() + Duration::from_secs(11)));
        assert_eq!(ejection_length(&config, 2), Duration::from_secs(20));
        assert_eq!(ejection_length(&config, 3), Duration::from_secs(25));
    }
}
