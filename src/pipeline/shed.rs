//! Load shedding at the dispatch seam (`shedding:` in routes.yaml): a call
//! takes a slot before it goes to the backend and keeps it until its
//! response stream ends (trailers, an error, the deadline, or the client
//! going away: the slot is released when the stream is dropped, whatever
//! the path). When no slot is free the call is refused at once instead of
//! piling up in front of a saturated upstream.
//!
//! - Unary calls take a slot of their upstream
//!   (`max_in_flight_per_upstream`) and of the process (`max_in_flight`),
//!   waiting at most `queue_timeout` (and never past their deadline);
//!   refused: 503 / UNAVAILABLE.
//! - Streaming calls (server, client and bidi streams, whatever the
//!   protocol: gRPC, gRPC-Web, Connect, NDJSON, SSE, WebSocket) take a slot
//!   of the process's streams (`max_streams`, 503 / UNAVAILABLE when full)
//!   and of their client's IP address (`max_streams_per_client`, 429 /
//!   RESOURCE_EXHAUSTED when full), without waiting. They do not count
//!   against the in-flight limits, so long-lived streams never starve
//!   unary calls.
//!
//! The limits outlive snapshots ([`ShedLimits`], kept by the gateway's
//! resources): a reload that keeps a limit keeps its count (open streams
//! stay counted), and one that changes it resizes it in place when the new
//! snapshot is committed. Shrinking below the slots in use refuses new
//! calls until enough of them end; calls in flight keep their slots.
//!
//! ```
//! use std::time::Duration;
//! use protogate::pipeline::shed::ShedLimits;
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let config = protogate::config::Config::parse("shedding: {max_in_flight: 1, queue_timeout: 0s}").unwrap();
//! let limits = ShedLimits::default();
//! let shedding = limits.build(&config.shedding, ["lib"]);
//! let admission = shedding.admission("lib", false).unwrap();
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
//! let first = admission.admit("lib", None, deadline).await.unwrap();
//! let second = admission.admit("lib", None, deadline).await.unwrap_err();
//! assert_eq!(second.to_string(), "overloaded: 1 call in flight in the gateway (shedding.max_in_flight)");
//! drop(first);
//! assert!(admission.admit("lib", None, deadline).await.is_ok());
//! # });
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use metrics::{Gauge, counter, gauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::SheddingConfig;
use crate::status::{GatewayError, ShedLimit};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A limit of slots that can be resized while slots are held: growing adds
/// permits, shrinking forgets free ones and owes the rest, paid by the
/// next slots released.
pub struct Limit {
    kind: ShedLimit,
    semaphore: Arc<Semaphore>,
    size: Mutex<usize>,
    /// Permits still to take out of circulation after a shrink.
    debt: AtomicUsize,
    held: Gauge,
}

impl Limit {
    fn new(kind: ShedLimit, upstream: &str, size: usize) -> Arc<Limit> {
        Arc::new(Limit {
            kind,
            semaphore: Arc::new(Semaphore::new(size)),
            size: Mutex::new(size),
            debt: AtomicUsize::new(0),
            held: gauge!("protogate_shed_slots_in_use", "limit" => kind.as_str(), "upstream" => upstream.to_string()),
        })
    }

    /// The number of slots.
    pub fn size(&self) -> usize {
        *lock(&self.size)
    }

    fn resize(&self, to: usize) {
        let mut size = lock(&self.size);
        if to > *size {
            let mut grow = to - *size;
            // Cancel what a shrink still owes first.
            let _ = self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                    let paid = d.min(grow);
                    grow -= paid;
                    Some(d - paid)
                });
            self.semaphore.add_permits(grow);
        } else if to < *size {
            let shrink = *size - to;
            let forgotten = self.semaphore.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
        *size = to;
    }

    fn slot(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        self.held.increment(1.0);
        Slot {
            limit: self.clone(),
            permit: Some(permit),
        }
    }

    fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let permit = self.semaphore.clone().try_acquire_owned().ok()?;
        Some(self.slot(permit))
    }

    async fn take(self: &Arc<Self>, until: Instant) -> Option<Slot> {
        if let Some(slot) = self.try_take() {
            return Some(slot);
        }
        if Instant::now() >= until {
            return None;
        }
        let wait = self.semaphore.clone().acquire_owned();
        match tokio::time::timeout_at(until, wait).await {
            Ok(Ok(permit)) => Some(self.slot(permit)),
            _ => None,
        }
    }
}

/// One slot of a [`Limit`], given back when dropped.
struct Slot {
    limit: Arc<Limit>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limit.held.decrement(1.0);
        let owed = self
            .limit
            .debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
            .is_ok();
        if let (true, Some(permit)) = (owed, self.permit.take()) {
            permit.forget();
        }
    }
}

/// Streams open per client address.
pub struct ClientLimit {
    max: AtomicUsize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ClientLimit {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let max = self.max.load(Ordering::Acquire);
        let mut open = lock(&self.open);
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            limit: self.clone(),
            ip,
        })
    }

    /// The client addresses with a stream open (entries go when their last
    /// stream ends, so this never grows with clients gone).
    pub fn clients(&self) -> usize {
        lock(&self.open).len()
    }
}

struct ClientSlot {
    limit: Arc<ClientLimit>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.limit.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The limits of every snapshot, kept across reloads (see the module docs).
#[derive(Default)]
pub struct ShedLimits {
    limits: Mutex<HashMap<(ShedLimit, String), Arc<Limit>>>,
    clients: Mutex<Option<Arc<ClientLimit>>>,
}

impl std::fmt::Debug for ShedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShedLimits")
            .field("limits", &lock(&self.limits).len())
            .finish_non_exhaustive()
    }
}

impl ShedLimits {
    /// The limits a snapshot with `config` and these upstreams uses: the
    /// existing ones (resized only by [`commit`](Self::commit)), new ones at
    /// their size.
    pub fn build<'a>(
        &self,
        config: &SheddingConfig,
        upstreams: impl IntoIterator<Item = &'a str>,
    ) -> Shedding {
        let mut limits = lock(&self.limits);
        let mut get = |kind: ShedLimit, upstream: &str, size: usize| {
            (size > 0).then(|| {
                let limit = limits
                    .entry((kind, upstream.to_string()))
                    .or_insert_with(|| Limit::new(kind, upstream, size))
                    .clone();
                (limit, size)
            })
        };
        let in_flight = get(ShedLimit::InFlight, "", config.max_in_flight);
        let streams = get(ShedLimit::Streams, "", config.max_streams);
        let upstreams = upstreams
            .into_iter()
            .filter_map(|u| {
                get(
                    ShedLimit::InFlightPerUpstream,
                    u,
                    config.max_in_flight_per_upstream,
                )
                .map(|l| (u.to_string(), l))
            })
            .collect();
        drop(limits);
        let per_client = (config.max_streams_per_client > 0).then(|| {
            let mut clients = lock(&self.clients);
            let limit = clients.get_or_insert_with(|| {
                Arc::new(ClientLimit {
                    max: AtomicUsize::new(config.max_streams_per_client),
                    open: Mutex::default(),
                })
            });
            (limit.clone(), config.max_streams_per_client)
        });
        Shedding {
            queue_timeout: config.queue_timeout.0,
            in_flight,
            streams,
            per_client,
            upstreams,
        }
    }

    /// `shedding` is now serving: its limits take their sizes, and limits
    /// it does not use are let go (calls holding their slots keep them).
    pub fn commit(&self, shedding: &Shedding) {
        let mut used = Vec::new();
        let all = shedding
            .in_flight
            .iter()
            .chain(&shedding.streams)
            .chain(shedding.upstreams.values());
        for (limit, size) in all {
            limit.resize(*size);
            used.push(limit.clone());
        }
        lock(&self.limits).retain(|_, l| used.iter().any(|u| Arc::ptr_eq(u, l)));
        let mut clients = lock(&self.clients);
        match &shedding.per_client {
            Some((limit, max)) => {
                limit.max.store(*max, Ordering::Release);
                *clients = Some(limit.clone());
            }
            None => *clients = None,
        }
    }
}

/// One snapshot's limits, with the sizes it wants.
#[derive(Default)]
pub struct Shedding {
    queue_timeout: Duration,
    in_flight: Option<(Arc<Limit>, usize)>,
    streams: Option<(Arc<Limit>, usize)>,
    per_client: Option<(Arc<ClientLimit>, usize)>,
    upstreams: HashMap<String, (Arc<Limit>, usize)>,
}

impl std::fmt::Debug for Shedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shedding")
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl Shedding {
    /// What a call to `upstream` takes before it is dispatched; `None` when
    /// no limit applies to it.
    pub fn admission(&self, upstream: &str, streaming: bool) -> Option<Arc<Admission>> {
        let first = |o: &Option<(Arc<Limit>, usize)>| o.as_ref().map(|(l, _)| l.clone());
        let admission = if streaming {
            Admission {
                queue_timeout: Duration::ZERO,
                limits: [first(&self.streams), None],
                per_client: self.per_client.as_ref().map(|(l, _)| l.clone()),
            }
        } else {
            Admission {
                queue_timeout: self.queue_timeout,
                // The upstream's (narrower) limit first.
                limits: [
                    self.upstreams.get(upstream).map(|(l, _)| l.clone()),
                    first(&self.in_flight),
                ],
                per_client: None,
            }
        };
        let any = admission.limits.iter().any(Option::is_some) || admission.per_client.is_some();
        any.then(|| Arc::new(admission))
    }

    /// The clients with a stream open, when streams are limited per client.
    pub fn clients_with_streams(&self) -> usize {
        self.per_client.as_ref().map_or(0, |(l, _)| l.clients())
    }
}

/// The limits one destination's calls take slots of (computed at load).
pub struct Admission {
    queue_timeout: Duration,
    limits: [Option<Arc<Limit>>; 2],
    per_client: Option<Arc<ClientLimit>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

/// The slots a call holds until its response stream ends.
pub struct Admitted {
    _slots: Vec<Slot>,
    _client: Option<ClientSlot>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("slots", &self._slots.len())
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// Takes the call's slots (waiting at most the queue timeout, never
    /// past `deadline`), or refuses it naming the limit that is full.
    pub async fn admit(
        &self,
        upstream: &str,
        client: Option<IpAddr>,
        deadline: Instant,
    ) -> Result<Admitted, GatewayError> {
        let until = deadline.min(Instant::now() + self.queue_timeout);
        let mut slots = Vec::with_capacity(2);
        for limit in self.limits.iter().flatten() {
            let slot = if self.queue_timeout.is_zero() {
                limit.try_take()
            } else {
                limit.take(until).await
            };
            match slot {
                Some(s) => slots.push(s),
                None => return Err(refuse(limit.kind, limit.size(), upstream, None)),
            }
        }
        let client_slot = match (&self.per_client, client) {
            (Some(limit), Some(ip)) => match limit.take(ip) {
                Some(s) => Some(s),
                None => {
                    let max = limit.max.load(Ordering::Acquire);
                    return Err(refuse(ShedLimit::StreamsPerClient, max, upstream, Some(ip)));
                }
            },
            _ => None,
        };
        Ok(Admitted {
            _slots: slots,
            _client: client_slot,
        })
    }
}

fn refuse(kind: ShedLimit, size: usize, upstream: &str, ip: Option<IpAddr>) -> GatewayError {
    counter!("protogate_shed_total", "limit" => kind.as_str(), "upstream" => upstream.to_string())
        .increment(1);
    let calls = if size == 1 { "call" } else { "calls" };
    let streams = if size == 1 { "stream" } else { "streams" };
    let what = match kind {
        ShedLimit::InFlight => format!("{size} {calls} in flight in the gateway"),
        ShedLimit::InFlightPerUpstream => format!("upstream {upstream}: {size} {calls} in flight"),
        ShedLimit::Streams => format!("{size} {streams} open in the gateway"),
        ShedLimit::StreamsPerClient => match ip {
            Some(ip) => format!("client {ip}: {size} {streams} open"),
            None => format!("{size} {streams} open per client"),
        },
    };
    GatewayError::Overloaded { limit: kind, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> SheddingConfig {
        crate::config::Config::parse(yaml).unwrap().shedding
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn shed_unlimited_has_no_admission() {
        let limits = ShedLimits::default();
        let s = limits.build(&config(""), ["lib"]);
        assert!(s.admission("lib", false).is_none());
        assert!(s.admission("lib", true).is_none());
    }

    #[tokio::test]
    async fn shed_queue_waits_for_a_slot_within_the_timeout() {
        let limits = ShedLimits::default();
        let s = limits.build(
            &config("shedding: {max_in_flight_per_upstream: 1, queue_timeout: 5s}"),
            ["lib"],
        );
        let a = s.admission("lib", false).unwrap();
        let held = a.admit("lib", None, later()).await.unwrap();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.admit("lib", None, later()).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn shed_queue_timeout_refuses_naming_the_upstream() {
        let limits = ShedLimits::default();
        let s = limits.build(
            &config("shedding: {max_in_flight_per_upstream: 1, queue_timeout: 10ms}"),
            ["lib"],
        );
        let a = s.admission("lib", false).unwrap();
        let _held = a.admit("lib", None, later()).await.unwrap();
        let e = a.admit("lib", None, later()).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert_eq!(
            e.to_string(),
            "overloaded: upstream lib: 1 call in flight (shedding.max_in_flight_per_upstream)"
        );
    }

    #[tokio::test]
    async fn shed_per_client_is_429_and_forgets_clients() {
        let limits = ShedLimits::default();
        let s = limits.build(&config("shedding: {max_streams_per_client: 1}"), ["lib"]);
        let a = s.admission("lib", true).unwrap();
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let held = a.admit("lib", Some(one), later()).await.unwrap();
        let e = a.admit("lib", Some(one), later()).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert_eq!(e.http_status().as_u16(), 429);
        let other = a.admit("lib", Some(two), later()).await.unwrap();
        assert_eq!(s.clients_with_streams(), 2);
        drop((held, other));
        assert_eq!(s.clients_with_streams(), 0);
    }

    #[tokio::test]
    async fn shed_resize_keeps_counts_and_pays_debt() {
        let limits = ShedLimits::default();
        let three = limits.build(&config("shedding: {max_streams: 3}"), []);
        limits.commit(&three);
        let a = three.admission("lib", true).unwrap();
        let held: Vec<_> =
            futures_util::future::join_all((0..3).map(|_| a.admit("lib", None, later())))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        // Shrink to 1 while 3 are held: nothing until two have ended.
        let one = limits.build(&config("shedding: {max_streams: 1}"), []);
        limits.commit(&one);
        let b = one.admission("lib", true).unwrap();
        let mut held = held.into_iter();
        drop(held.next());
        assert!(b.admit("lib", None, later()).await.is_err());
        drop(held.next());
        assert!(b.admit("lib", None, later()).await.is_err());
        drop(held.next());
        let last = b.admit("lib", None, later()).await.unwrap();
        assert!(b.admit("lib", None, later()).await.is_err());
        // Grow again: the same limit, one more slot.
        let two = limits.build(&config("shedding: {max_streams: 2}"), []);
        limits.commit(&two);
        let c = two.admission("lib", true).unwrap();
        let _more = c.admit("lib", None, later()).await.unwrap();
        assert!(c.admit("lib", None, later()).await.is_err());
        drop(last);
        assert!(c.admit("lib", None, later()).await.is_ok());
    }
}
