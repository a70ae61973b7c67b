//! Health: the upstream probers behind `/readyz` ([`crate::admin`]), the
//! gateway's own `grpc.health.v1.Health` service, and the drain at shutdown.
//!
//! **Probers.** Every upstream that serves at least one method (mocked
//! services aside) gets a background task that asks it
//! `grpc.health.v1.Health/Check` with service `""` (the whole server) every
//! `health.interval` and keeps the answer, so readiness is answered from
//! memory. A probe goes over the upstream's own connection (the one calls
//! use, from [`Resources`]): it checks the path calls take, and opens no
//! connection of its own. Probers are keyed by upstream URL and follow
//! reloads ([`Health::track`] runs before each new snapshot serves): an
//! unchanged upstream keeps its prober, a new one is probed at once, a
//! changed one's prober restarts on the new channel from its last answer,
//! a removed one's stops.
//!
//! **UNIMPLEMENTED.** An upstream that answers UNIMPLEMENTED has no health
//! service; it did answer, in gRPC, so it is up, and it counts as ready.
//! (Kubernetes' gRPC probe and Envoy's gRPC health check would call it
//! unhealthy; a gateway in front of servers that never registered the
//! health service should not stay unready forever because of it.)
//! `health.unimplemented: not_ready` requires the health service instead.
//!
//! **Ready** means: not draining, every descriptor source loaded, and every
//! upstream in use SERVING (or UNIMPLEMENTED, above). In mock mode there is
//! no upstream: readiness is the descriptors.
//!
//! **The gateway's own `grpc.health.v1.Health`** (Check and Watch, on the
//! main listener, for gRPC load balancers): service `""` is the gateway,
//! SERVING when ready; a named service is NOT_FOUND (Watch:
//! SERVICE_UNKNOWN) unless loaded, else SERVING when its backend is (the
//! mock always is) and the gateway is not draining. These calls bypass the
//! pipeline: they are not counted, logged or authenticated like API calls.
//!
//! **Drain.** [`Health::start_draining`] turns readiness off (503 and
//! NOT_SERVING) while requests are still served; [`Health::stop`] then ends
//! Watch streams (so graceful shutdown does not wait on them) and resolves
//! [`Health::stopped`], which the listeners shut down on; at the end of the
//! grace period, [`Health::shutdown`]'s cut ends the calls still open.

mod service; // the gateway's own grpc.health.v1 service

pub use service::{GrpcHealth, is_health_call, serve};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use futures_util::stream::{self, BoxStream};
use http::{Request, Response};
use tokio::sync::watch;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{self, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::ServiceExt;

use crate::config::{HealthOptions, Unimplemented};
use crate::gateway::{Gateway, Resources};
use crate::live::Live;
use crate::pipeline::Shutdown;
use crate::upstream::{GrpcUpstream, UpstreamFault};

/// Where the process is in its life; it only moves forward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving; ready when everything it needs is.
    #[default]
    Serving,
    /// Shutting down: still serving requests, but not ready.
    Draining,
    /// The listeners are stopping.
    Stopped,
}

/// What the last check of an upstream found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No answer yet: the prober has just started.
    Unchecked,
    /// The upstream answered with this status.
    Answered(ServingStatus),
    /// The upstream answered UNIMPLEMENTED: it has no health service.
    NoHealthService,
    /// No answer.
    Failed(ProbeError),
}

/// Why a check got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or it broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Something answered, but not in gRPC.
    #[error("bad gateway: {0}")]
    NotGrpc(String),
    /// No answer within `health.timeout`.
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    /// The health service failed the call.
    #[error("health check failed: {code:?}: {message}")]
    Status {
        /// The gRPC code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Unchecked => f.write_str("not checked yet"),
            Probe::Answered(s) => f.write_str(s.as_str_name()),
            Probe::NoHealthService => f.write_str("no health service (UNIMPLEMENTED)"),
            Probe::Failed(e) => e.fmt(f),
        }
    }
}

impl Probe {
    /// Whether this answer makes the upstream ready.
    pub fn is_ready(&self, unimplemented: Unimplemented) -> bool {
        match self {
            Probe::Answered(s) => *s == ServingStatus::Serving,
            Probe::NoHealthService => unimplemented == Unimplemented::Ready,
            Probe::Unchecked | Probe::Failed(_) => false,
        }
    }
}

/// One upstream in a [`Readiness`] report.
#[derive(Debug, Clone)]
pub struct UpstreamReadiness {
    /// Its name in routes.yaml (`--upstream` for the command line's).
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The last check.
    pub probe: Probe,
    /// Whether it counts as ready.
    pub ready: bool,
}

/// Whether the gateway is ready, and what is not.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// Draining or stopped means not ready.
    pub phase: Phase,
    /// Descriptor sources that provided nothing yet.
    pub missing: Vec<String>,
    /// Every upstream in use (none while checks are off).
    pub upstreams: Vec<UpstreamReadiness>,
}

impl Readiness {
    /// Ready to take traffic.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Serving
            && self.missing.is_empty()
            && self.upstreams.iter().all(|u| u.ready)
    }

    /// Each reason it is not ready, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.phase != Phase::Serving {
            out.push("draining: the gateway is shutting down".to_string());
        }
        out.extend(self.missing.iter().cloned());
        out.extend(
            self.upstreams
                .iter()
                .filter(|u| !u.ready)
                .map(|u| format!("upstream {} ({}): {}", u.name, u.url, u.probe)),
        );
        out
    }
}

/// A version bumped on every change readiness depends on, and the phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Signal {
    phase: Phase,
    version: u64,
}

/// The probers and the drain state of one live gateway (see the module
/// docs). Dropping it stops the probers.
#[derive(Debug)]
pub struct Health {
    probers: Mutex<HashMap<String, Prober>>,
    signal: Arc<watch::Sender<Signal>>,
    /// The drain's last step, as calls see it.
    shutdown: Shutdown,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            probers: Mutex::default(),
            signal: Arc::new(watch::Sender::new(Signal::default())),
            shutdown: Shutdown::default(),
        }
    }
}

/// One upstream's background prober; dropping it stops the task.
#[derive(Debug)]
struct Prober {
    upstream: GrpcUpstream,
    interval: Duration,
    timeout: Duration,
    state: watch::Receiver<Probe>,
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A map of handles cannot be left half-updated by a panic: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    /// `gw` (built from `resources`) is about to serve: probe every
    /// upstream it uses (keeping the probers of unchanged ones), stop
    /// probing the others.
    pub fn track(&self, gw: &Gateway, resources: &Resources) {
        let options = &gw.config.health;
        let urls: BTreeSet<String> = if options.enabled() {
            upstreams_in_use(gw).into_values().collect()
        } else {
            BTreeSet::new()
        };
        let mut probers = lock(&self.probers);
        probers.retain(|url, _| urls.contains(url));
        for url in urls {
            // A snapshot built with other resources (`Live::fixed`) gets a
            // channel of its own for probing.
            let max = gw.max_response_bytes();
            let Some(upstream) = resources.upstream(&url, max).or_else(|| {
                let resolver = crate::upstream::resolve::system();
                GrpcUpstream::new(&url, max, &Default::default(), resolver).ok()
            }) else {
                continue;
            };
            let same = probers.get(&url).is_some_and(|p| {
                p.upstream.same_as(&upstream)
                    && p.interval == options.interval.0
                    && p.timeout == options.timeout.0
            });
            if same {
                continue;
            }
            // A new channel or new settings: restart from the last answer
            // (the old prober lets go of the old channel, so it can drain).
            let last = probers
                .get(&url)
                .map_or(Probe::Unchecked, |p| p.state.borrow().clone());
            let prober = Prober::start(upstream, options, last, self.signal.clone());
            probers.insert(url, prober);
        }
        drop(probers);
        self.signal.send_modify(|s| s.version += 1);
    }

    /// Readiness of `gw`: answered from the probers' last results, except
    /// that an upstream not checked yet (just started or added) is waited
    /// for, up to its timeout.
    pub async fn readiness(&self, gw: &Gateway) -> Readiness {
        let options = &gw.config.health;
        let upstreams = if options.enabled() {
            let checks = upstreams_in_use(gw)
                .into_iter()
                .map(|(name, url)| async move {
                    let probe = self.probe(&url, options.timeout.0).await;
                    let ready = probe.is_ready(options.unimplemented);
                    UpstreamReadiness {
                        name,
                        url,
                        probe,
                        ready,
                    }
                });
            futures_util::future::join_all(checks).await
        } else {
            Vec::new()
        };
        Readiness {
            phase: self.phase(),
            missing: gw.missing.clone(),
            upstreams,
        }
    }

    /// The serving status of `service` in `gw`, as the health protocol
    /// means it; `None` when no such service is loaded.
    pub async fn service_status(&self, gw: &Gateway, service: &str) -> Option<ServingStatus> {
        let serving = |ok: bool| match ok {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        if service.is_empty() {
            return Some(serving(self.readiness(gw).await.is_ready()));
        }
        let svc = gw.pool.get_service_by_name(service)?;
        if self.phase() != Phase::Serving {
            return Some(ServingStatus::NotServing);
        }
        let target = svc
            .methods()
            .next()
            .and_then(|m| gw.grpc_targets.get(crate::call::grpc_path(&m).as_str()));
        let Some(target) = target else {
            // No method, nothing to call: as loaded as it gets.
            return Some(ServingStatus::Serving);
        };
        if target.backend.is_none() {
            return Some(ServingStatus::NotServing);
        }
        let options = &gw.config.health;
        match gw.upstreams.get(&*target.upstream) {
            Some(url) if options.enabled() && !is_mock(gw, &target.upstream) => {
                let probe = self.probe(url, options.timeout.0).await;
                Some(serving(probe.is_ready(options.unimplemented)))
            }
            _ => Some(ServingStatus::Serving),
        }
    }

    /// The last answer of the prober of `url`; waits up to `timeout` (and a
    /// little) for the first one.
    async fn probe(&self, url: &str, timeout: Duration) -> Probe {
        let Some(mut rx) = lock(&self.probers).get(url).map(|p| p.state.clone()) else {
            return Probe::Unchecked;
        };
        let first = rx.wait_for(|p| *p != Probe::Unchecked);
        // Ended or timed out: the answer is whatever is there.
        let _ = tokio::time::timeout(timeout + Duration::from_millis(250), first).await;
        rx.borrow().clone()
    }

    /// The phase: serving, draining or stopped.
    pub fn phase(&self) -> Phase {
        self.signal.borrow().phase
    }

    /// Readiness turns off (503, NOT_SERVING); requests are still served.
    pub fn start_draining(&self) {
        self.set_phase(Phase::Draining);
    }

    /// The listeners may stop now: Watch streams end, [`Health::stopped`]
    /// resolves.
    pub fn stop(&self) {
        self.set_phase(Phase::Stopped);
    }

    fn set_phase(&self, phase: Phase) {
        self.signal.send_modify(|s| {
            s.phase = s.phase.max(phase);
            s.version += 1;
        });
    }

    /// Resolves once [`Health::stop`] has been called.
    pub async fn stopped(&self) {
        let mut rx = self.signal.subscribe();
        let _ = rx.wait_for(|s| s.phase == Phase::Stopped).await;
    }

    /// The signal that ends the calls still open at the end of the drain,
    /// and their count (the server puts it in every request).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

/// Upstream name → URL, for every upstream some method of `gw` calls.
fn upstreams_in_use(gw: &Gateway) -> BTreeMap<String, String> {
    let names: BTreeSet<&str> = gw
        .grpc_targets
        .values()
        .filter(|t| t.backend.is_some() && !is_mock(gw, &t.upstream))
        .map(|t| &*t.upstream)
        .collect();
    names
        .into_iter()
        .filter_map(|n| gw.upstreams.get_key_value(n))
        .map(|(n, u)| (n.clone(), u.clone()))
        .collect()
}

/// Targets served by the mock are labelled `mock`.
fn is_mock(gw: &Gateway, upstream: &str) -> bool {
    gw.mock.is_some() && upstream == "mock"
}

impl Prober {
    /// Starts probing `upstream` (when a runtime is there to run the task).
    fn start(
        upstream: GrpcUpstream,
        options: &HealthOptions,
        last: Probe,
        signal: Arc<watch::Sender<Signal>>,
    ) -> Prober {
        let (tx, rx) = watch::channel(last);
        let (interval, timeout) = (options.interval.0, options.timeout.0);
        let task = match tokio::runtime::Handle::try_current() {
            Ok(rt) => Some(
                rt.spawn(run(
                    upstream.clone(),
                    interval,
                    timeout,
                    options.unimplemented,
                    tx,
                    signal,
                ))
                .abort_handle(),
            ),
            Err(_) => {
                tracing::warn!(
                    url = upstream.url(),
                    "no async runtime: this upstream's health is not checked"
                );
                None
            }
        };
        Prober {
            upstream,
            interval,
            timeout,
            state: rx,
            task,
        }
    }
}

/// The prober's loop: check, record, sleep.
async fn run(
    upstream: GrpcUpstream,
    interval: Duration,
    timeout: Duration,
    unimplemented: Unimplemented,
    state: watch::Sender<Probe>,
    signal: Arc<watch::Sender<Signal>>,
) {
    loop {
        let probe = check(&upstream, timeout).await;
        let up = probe.is_ready(unimplemented);
        metrics::gauge!("protogate_upstream_healthy", "url" => upstream.url().to_string())
            .set(if up { 1.0 } else { 0.0 });
        let before = state.borrow().clone();
        if probe != before {
            log_change(upstream.url(), &before, &probe);
            state.send_replace(probe);
            signal.send_modify(|s| s.version += 1);
        }
        tokio::time::sleep(interval).await;
    }
}

fn log_change(url: &str, before: &Probe, now: &Probe) {
    match now {
        Probe::Answered(ServingStatus::Serving) if *before == Probe::Unchecked => {
            tracing::debug!(upstream = url, "upstream is SERVING");
        }
        Probe::Answered(ServingStatus::Serving) => {
            tracing::info!(upstream = url, "upstream is SERVING again");
        }
        Probe::NoHealthService => tracing::info!(
            upstream = url,
            "upstream has no grpc.health.v1 service (UNIMPLEMENTED)"
        ),
        _ => tracing::warn!(upstream = url, "upstream not ready: {now}"),
    }
}

/// One `Check` of the whole server (service `""`).
async fn check(upstream: &GrpcUpstream, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, upstream.check_health("", timeout)).await {
        Err(_) => Probe::Failed(ProbeError::Timeout(timeout)),
        Ok(Ok(status)) => {
            Probe::Answered(ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown))
        }
        Ok(Err(status)) => from_status(&status, timeout),
    }
}

fn from_status(status: &tonic::Status, timeout: Duration) -> Probe {
    // A fault below gRPC travels as the status's source; a status without
    // one is the upstream's answer.
    let fault = std::error::Error::source(status).and_then(|s| s.downcast_ref::<UpstreamFault>());
    let error = match fault {
        Some(
            UpstreamFault::Unreachable(m)
            | UpstreamFault::Refused(m)
            | UpstreamFault::NotConnected(m),
        ) => ProbeError::Unreachable(m.clone()),
        Some(f @ (UpstreamFault::NotGrpc(_) | UpstreamFault::MissingStatus)) => {
            ProbeError::NotGrpc(f.to_string())
        }
        Some(UpstreamFault::Timeout) => ProbeError::Timeout(timeout),
        None if status.code() == tonic::Code::Unimplemented => return Probe::NoHealthService,
        None => ProbeError::Status {
            code: status.code(),
            message: status.message().to_string(),
        },
    };
    Probe::Failed(error)
}
