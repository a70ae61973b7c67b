//! The endpoints of one upstream and the choice among them: the addresses
//! its URL's host (or its static `endpoints:`) resolve to, re-resolved
//! every `dns_refresh`; a pick per call (power of two choices on calls in
//! flight, or round robin) among the endpoints in the rotation; ejection
//! bookkeeping and active health checks.
//!
//! Written here rather than with tower's `balance`: that one takes `&mut
//! self` per call, so sharing it means a `Buffer` and its worker-task hop
//! per call — the hop `connection.rs` exists to avoid.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::time::Instant;

use super::endpoint::{ConnTemplate, Endpoint};
use super::resolve::Resolve;
use crate::config::{BalancePolicy, EndpointsConfig};

/// The endpoints of one upstream.
pub(crate) struct Balancer {
    url: Arc<str>,
    /// The `host:port`s resolved into endpoints.
    names: Vec<(String, u16)>,
    config: EndpointsConfig,
    template: ConnTemplate,
    resolver: Arc<dyn Resolve>,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    /// Why the last resolution failed, while it did.
    resolve_error: Mutex<Option<String>>,
    /// One resolution at a time; calls finding no endpoint wait for it.
    resolving: tokio::sync::Mutex<()>,
    next: AtomicUsize,
}

impl Balancer {
    /// The endpoints of the upstream at `uri` (its static `endpoints`, or
    /// its host), resolved on first use and then every `dns_refresh` by a
    /// task that ends with the balancer.
    pub fn new(
        uri: &http::Uri,
        config: EndpointsConfig,
        template: ConnTemplate,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Arc<Balancer>, String> {
        let names = names(uri, &config)?;
        let balancer = Arc::new(Balancer {
            url: Arc::from(uri.to_string()),
            names,
            config,
            template,
            resolver,
            endpoints: ArcSwap::from_pointee(Vec::new()),
            resolve_error: Mutex::new(None),
            resolving: tokio::sync::Mutex::new(()),
            next: AtomicUsize::new(0),
        });
        spawn_refresh(&balancer);
        spawn_health_checks(&balancer);
        Ok(balancer)
    }

    /// The current endpoints.
    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// An endpoint for a call, avoiding those in `avoid` (which already
    /// failed to connect for it). Endpoints out of the rotation are used
    /// only when none is in it (better a likely failure than a certain one).
    pub async fn pick(&self, avoid: &[SocketAddr]) -> Result<Arc<Endpoint>, String> {
        if self.endpoints.load().is_empty() {
            self.resolve_once().await;
        }
        let all = self.endpoints.load();
        // One endpoint (the common case): no choice to make.
        if let [only] = all.as_slice() {
            return match avoid.contains(&only.addr) {
                false => Ok(only.clone()),
                true => Err(self.no_endpoint(avoid)),
            };
        }
        let now = Instant::now();
        let fresh: Vec<&Arc<Endpoint>> = all.iter().filter(|e| !avoid.contains(&e.addr)).collect();
        let available: Vec<&Arc<Endpoint>> =
            fresh.iter().copied().filter(|e| e.available(now)).collect();
        let from = if available.is_empty() {
            fresh
        } else {
            available
        };
        self.choose(&from)
            .cloned()
            .ok_or_else(|| self.no_endpoint(avoid))
    }

    fn choose<'a>(&self, from: &[&'a Arc<Endpoint>]) -> Option<&'a Arc<Endpoint>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        match (from.len(), self.config.balance) {
            (0, _) => None,
            (1, _) => Some(from[0]),
            (n, BalancePolicy::RoundRobin) => Some(from[turn % n]),
            (n, BalancePolicy::LeastRequest) => {
                let a = fastrand::usize(..n);
                let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                let (ea, eb) = (from[a], from[b]);
                Some(if eb.in_flight() < ea.in_flight() {
                    eb
                } else {
                    ea
                })
            }
        }
    }

    fn no_endpoint(&self, avoid: &[SocketAddr]) -> String {
        if !avoid.is_empty() {
            return "no endpoint could be connected to".into();
        }
        match self
            .resolve_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(why) => format!("no endpoints: {why}"),
            None => "no endpoints: the name resolved to no address".into(),
        }
    }

    /// Records a call's outcome on `endpoint`.
    pub fn record(&self, endpoint: &Endpoint, failed: bool) {
        endpoint.record(failed, &self.config.ejection, || self.may_eject_one_more());
    }

    /// Whether one more endpoint may be ejected: at most
    /// `max_ejected_percent` of them, at least one.
    fn may_eject_one_more(&self) -> bool {
        let all = self.endpoints.load();
        let now = Instant::now();
        let ejected = all.iter().filter(|e| e.ejected(now)).count();
        let cap = (all.len() * usize::from(self.config.ejection.max_ejected_percent) / 100).max(1);
        ejected < cap && all.len() > 1
    }

    /// Resolves now unless a resolution is under way (then waits for it).
    async fn resolve_once(&self) {
        let Ok(_turn) = self.resolving.try_lock() else {
            let _wait = self.resolving.lock().await;
            return;
        };
        self.resolve().await;
    }

    /// Resolves every name; the endpoints become what they resolved to,
    /// keeping the existing endpoint (and connections) of every address
    /// still there. A failed resolution keeps the endpoints it had.
    async fn resolve(&self) {
        let mut addrs = Vec::new();
        let mut failures = Vec::new();
        for (host, port) in &self.names {
            if let Some(ip) = ip_literal(host) {
                addrs.push(SocketAddr::new(ip, *port));
                continue;
            }
            match self.resolver.resolve(host, *port).await {
                Ok(found) => addrs.extend(found),
                Err(e) => failures.push(format!("cannot resolve {host}: {e}")),
            }
        }
        addrs.sort();
        addrs.dedup();
        let mut error = self.resolve_error.lock().unwrap_or_else(|p| p.into_inner());
        if addrs.is_empty() {
            let why = failures.join("; ");
            if !why.is_empty() && error.as_deref() != Some(&why) {
                tracing::warn!(url = %self.url, "upstream endpoints: {why}");
            }
            *error = (!why.is_empty()).then_some(why);
            return;
        }
        *error = None;
        drop(error);
        self.set(addrs);
    }

    fn set(&self, addrs: Vec<SocketAddr>) {
        let old = self.endpoints.load();
        if old.iter().map(|e| e.addr).eq(addrs.iter().copied()) {
            return;
        }
        let new: Vec<Arc<Endpoint>> = addrs
            .into_iter()
            .map(|addr| match old.iter().find(|e| e.addr == addr) {
                Some(e) => e.clone(),
                None => Arc::new(Endpoint::new(
                    addr,
                    self.template.clone(),
                    self.config.pool.clone(),
                )),
            })
            .collect();
        tracing::info!(url = %self.url, endpoints = ?new.iter().map(|e| e.addr).collect::<Vec<_>>(), "upstream endpoints");
        self.endpoints.store(Arc::new(new));
    }
}

/// The `host:port`s an upstream's endpoints come from.
fn names(uri: &http::Uri, config: &EndpointsConfig) -> Result<Vec<(String, u16)>, String> {
    if config.endpoints.is_empty() {
        let host = uri.host().ok_or_else(|| format!("{uri}: no host"))?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        return Ok(vec![(host.to_string(), port)]);
    }
    config
        .endpoints
        .iter()
        .map(|e| {
            let a: http::uri::Authority = e.parse().map_err(|_| format!("{e:?}: not host:port"))?;
            let port = a.port_u16().ok_or_else(|| format!("{e:?}: no port"))?;
            Ok((a.host().to_string(), port))
        })
        .collect()
}

/// `host` as an IP address, if it is one (`[::1]` too).
fn ip_literal(host: &str) -> Option<std::net::IpAddr> {
    host.trim_matches(['[', ']']).parse().ok()
}

/// Re-resolves every `dns_refresh` (not at all when it is zero, or when
/// every name is an IP address).
fn spawn_refresh(balancer: &Arc<Balancer>) {
    let every = balancer.config.dns_refresh.0;
    let literal = balancer.names.iter().all(|(h, _)| ip_literal(h).is_some());
    if every.is_zero() || literal {
        return;
    }
    let weak = Arc::downgrade(balancer);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(b) = weak.upgrade() else { return };
            b.resolve_once().await;
        }
    });
}

/// Asks every endpoint's `grpc.health.v1.Health/Check` every interval;
/// an endpoint that does not answer SERVING leaves the rotation until it
/// does.
fn spawn_health_checks(balancer: &Arc<Balancer>) {
    let Some(check) = balancer.config.health_check.clone() else {
        return;
    };
    let weak: Weak<Balancer> = Arc::downgrade(balancer);
    tokio::spawn(async move {
        loop {
            let Some(b) = weak.upgrade() else { return };
            if b.endpoints.load().is_empty() {
                b.resolve_once().await;
            }
            let endpoints = b.endpoints();
            drop(b);
            let probes = endpoints
                .iter()
                .map(|e| super::grpc::probe(e, &check.service, check.timeout.0));
            for (e, serving) in endpoints
                .iter()
                .zip(futures_util::future::join_all(probes).await)
            {
                e.set_healthy(serving);
            }
            tokio::time::sleep(check.interval.0.max(Duration::from_millis(10))).await;
        }
    });
}
