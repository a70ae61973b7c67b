//! One request's passage through the gateway: resolution, the shared
//! dispatch step (hooks, deadline, backend) and the outcome report.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use http::{HeaderMap, Method, StatusCode};
use tokio::time::{Instant, Sleep};
use tonic::Code;
use tonic::metadata::MetadataMap;

use super::shed::Admitted;
use super::{
    Begin, CallInfo, ClientAddr, Hooks, OpenCall, Outcome, PeerIdentity, Protocol, Shutdown, Target,
};
use crate::call::{Call, CallContext, CallEvent, CallResponse, RequestStream};
use crate::status::GatewayError;

/// What an adapter hands to [`Exchange::dispatch`]: the decoded request.
pub struct Dispatch<'a> {
    /// Request metadata, already filtered by the adapter.
    pub metadata: MetadataMap,
    /// The encoded request messages.
    pub requests: RequestStream,
    /// The HTTP request headers as received (for hooks and the mock).
    pub headers: &'a HeaderMap,
    /// The deadline the client asked for (`grpc-timeout`), if any.
    pub client_timeout: Option<Duration>,
}

/// Follows one request from arrival to the end of its answer and reports
/// its [`Outcome`] to the hooks exactly once: through [`finish`](Self::finish),
/// or, when the answer is abandoned (the client went away mid-stream), on
/// drop as CANCELLED / 499.
pub struct Exchange {
    hooks: Hooks,
    protocol: Protocol,
    http_method: Method,
    request_id: Option<http::HeaderValue>,
    started: Instant,
    target: Option<Arc<Target>>,
    shared: Arc<Shared>,
    done: bool,
    dispatched: bool,
    backend_latency: Option<Duration>,
    /// The hooks' per-request state; lent to the call while hooks run.
    extensions: http::Extensions,
    /// Counts the request open for the drain, whose cut ends its call.
    open: Option<OpenCall>,
}

/// State the request and response streams share with the exchange.
#[derive(Default)]
struct Shared {
    received: AtomicU64,
    sent: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    /// The first malformed or oversized request message: it decides the
    /// call's status, whatever the backend answers to the cancellation.
    client_error: Mutex<Option<GatewayError>>,
}

impl Shared {
    fn client_error(&self) -> Option<GatewayError> {
        self.client_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Exchange {
    /// A request just arrived; its deadline runs from now.
    pub fn begin<B>(hooks: Hooks, protocol: Protocol, request: &http::Request<B>) -> Exchange {
        let mut extensions = http::Extensions::new();
        // The TLS listener's verified client identity, for every hook.
        if let Some(peer) = request.extensions().get::<PeerIdentity>() {
            extensions.insert(peer.clone());
        }
        // The connection's remote address (rate limits keyed by client IP).
        if let Some(addr) = request.extensions().get::<ClientAddr>() {
            extensions.insert(*addr);
        }
        let open = request.extensions().get::<Shutdown>().map(Shutdown::hold);
        let headers = request.headers();
        hooks.on_begin(&mut Begin {
            protocol,
            uri: request.uri(),
            headers,
            extensions: &mut extensions,
        });
        let request_id = if hooks.is_empty() {
            None
        } else {
            headers.get("x-request-id").cloned()
        };
        Exchange {
            hooks,
            protocol,
            http_method: request.method().clone(),
            request_id,
            started: Instant::now(),
            target: None,
            shared: Arc::default(),
            done: false,
            dispatched: false,
            backend_latency: None,
            extensions,
            open,
        }
    }

    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records where the request goes.
    pub fn resolve(&mut self, target: Arc<Target>) {
        self.target = Some(target);
    }

    /// Where the request goes, once resolved.
    pub fn target(&self) -> Option<&Arc<Target>> {
        self.target.as_ref()
    }

    /// The one dispatch step: runs the hooks, then the backend, under the
    /// deadline (the client's, else the target's, counted from arrival).
    /// The returned events end with DEADLINE_EXCEEDED when it passes, and
    /// with the client's own error when a request message was malformed.
    pub async fn dispatch(&mut self, d: Dispatch<'_>) -> Result<CallResponse, GatewayError> {
        let target = self
            .target
            .clone()
            .ok_or_else(|| GatewayError::Internal("dispatch before resolve".into()))?;
        let backend = target.backend.clone().ok_or_else(|| {
            GatewayError::UpstreamUnavailable(format!(
                "no upstream is configured for {} (use --upstream or upstreams: in routes.yaml)",
                target.method.parent_service().full_name()
            ))
        })?;
        let timeout = d.client_timeout.unwrap_or(target.timeout);
        let late = Late {
            deadline: self.started + timeout,
            timeout,
            shared: self.shared.clone(),
            shutdown: self.open.as_ref().map(|o| o.shutdown().clone()),
        };
        let info = CallInfo {
            protocol: self.protocol,
            target: &target,
            headers: d.headers,
        };
        self.hooks
            .prepare(&info, &self.extensions, late.deadline)
            .await;
        let mut call = self.call_for(&target, d, late.deadline);
        call.extensions = std::mem::take(&mut self.extensions);
        let accepted = self.hooks.on_call(&mut call, &info);
        // Built while the call still holds the hooks' state (the subject
        // auth verified); they run only when awaited, below.
        let checks = match accepted {
            Ok(()) => self.hooks.admit(&call, &info),
            Err(_) => Vec::new(),
        };
        self.extensions = std::mem::take(&mut call.extensions);
        accepted?;
        check_metadata(&call, &target)?;
        for check in checks {
            // A passed deadline is told apart just below.
            if let Ok(decided) = tokio::time::timeout_at(late.deadline, check).await {
                decided?;
            }
        }
        if late.expired() {
            return Err(GatewayError::DeadlineExceeded(timeout));
        }
        // Load shedding: the slots ride the response stream until it ends.
        let slots = match &target.admission {
            Some(admission) => {
                let client = self.extensions.get::<ClientAddr>().map(|a| a.0.ip());
                Some(
                    admission
                        .admit(&target.upstream, client, late.deadline)
                        .await?,
                )
            }
            None => None,
        };
        self.hooks.on_dispatch(&info);
        self.dispatched = true;
        let called = Instant::now();
        let answered = late.bound(backend.call(call)).await;
        self.backend_latency = Some(called.elapsed());
        let response = answered?;
        Ok(CallResponse {
            metadata: response.metadata,
            events: Guarded {
                events: response.events,
                sleep: None,
                cut: None,
                late,
                done: false,
                slots,
            }
            .boxed(),
        })
    }

    /// The call for `target`: its request messages counted, its context
    /// filled for backends that read it.
    fn call_for(&self, target: &Target, d: Dispatch<'_>, deadline: Instant) -> Call {
        let requests = Box::pin(Counted {
            inner: d.requests,
            shared: self.shared.clone(),
        });
        let mut call = Call::new(
            target.method.clone(),
            target.path.clone(),
            d.metadata,
            requests,
            deadline,
        );
        if target.wants_context {
            call.context = CallContext {
                route: target.route.as_deref().map(str::to_string),
                headers: d.headers.clone(),
                protocol: Some(self.protocol.as_str()),
            };
        }
        call
    }

    /// Reports the outcome: the HTTP status answered and the call's result.
    pub fn finish(mut self, http_status: StatusCode, result: Result<(), &GatewayError>) {
        self.report(http_status, result);
    }

    fn report(&mut self, http_status: StatusCode, result: Result<(), &GatewayError>) {
        if std::mem::replace(&mut self.done, true) || self.hooks.is_empty() {
            return;
        }
        let (code, error) = match result {
            Ok(()) => (Code::Ok, None),
            Err(e) => (e.code(), Some(e)),
        };
        self.hooks.on_outcome(&Outcome {
            protocol: self.protocol,
            http_method: &self.http_method,
            request_id: self.request_id.as_ref().and_then(|v| v.to_str().ok()),
            target: self.target.as_deref(),
            http_status,
            code,
            error,
            elapsed: self.started.elapsed(),
            dispatched: self.dispatched,
            backend_latency: self.backend_latency,
            messages_received: self.shared.received.load(Ordering::Relaxed),
            messages_sent: self.shared.sent.load(Ordering::Relaxed),
            bytes_received: self.shared.bytes_received.load(Ordering::Relaxed),
            bytes_sent: self.shared.bytes_sent.load(Ordering::Relaxed),
            extensions: &self.extensions,
        });
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.done && !self.hooks.is_empty() {
            let gone = GatewayError::Cancelled(
                "the client went away before the answer was complete".into(),
            );
            self.report(gone.http_status(), Err(&gone));
        }
    }
}

/// Refuses metadata over the target's limit.
fn check_metadata(call: &Call, target: &Target) -> Result<(), GatewayError> {
    let size = metadata_size(&call.metadata);
    if size > target.max_metadata_bytes {
        return Err(GatewayError::HeadersTooLarge {
            what: "request metadata",
            size,
            limit: target.max_metadata_bytes,
            setting: "limits.max_metadata_bytes",
        });
    }
    Ok(())
}

/// The size of `md` as HTTP/2 counts a header list (RFC 9113 §6.5.2: name,
/// value and 32 bytes per entry), which is what servers limit: one
/// request's oversized metadata must never reach (and break) the upstream
/// connection other calls share.
fn metadata_size(md: &MetadataMap) -> usize {
    md.as_ref()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum()
}

/// Decides what a failure really was: the client's malformed message first,
/// then a passed deadline (an upstream that gave up on it may say CANCELLED),
/// then the error as reported.
#[derive(Clone)]
struct Late {
    deadline: Instant,
    timeout: Duration,
    shared: Arc<Shared>,
    /// The drain: its cut ends the call.
    shutdown: Option<Shutdown>,
}

impl Late {
    /// `answer`, unless the deadline passes or the drain cuts the call first.
    async fn bound<T>(
        &self,
        answer: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let cut = async {
            match &self.shutdown {
                Some(s) => s.until_cut().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            answered = tokio::time::timeout_at(self.deadline, answer) => match answered {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(self.refine(e)),
                Err(_) => Err(self.refine(GatewayError::DeadlineExceeded(self.timeout))),
            },
            () = cut => Err(GatewayError::ShuttingDown),
        }
    }

    fn is_cut(&self) -> bool {
        self.shutdown.as_ref().is_some_and(Shutdown::is_cut)
    }

    fn refine(&self, e: GatewayError) -> GatewayError {
        if let Some(client) = self.shared.client_error() {
            return client;
        }
        if self.expired() {
            return GatewayError::DeadlineExceeded(self.timeout);
        }
        e
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// The request messages, counted; the first error is kept for the status.
struct Counted {
    inner: RequestStream,
    shared: Arc<Shared>,
}

impl Stream for Counted {
    type Item = Result<bytes::Bytes, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.inner.poll_next_unpin(cx);
        match &item {
            Poll::Ready(Some(Ok(m))) => {
                self.shared.received.fetch_add(1, Ordering::Relaxed);
                let size = m.len() as u64;
                self.shared
                    .bytes_received
                    .fetch_add(size, Ordering::Relaxed);
            }
            Poll::Ready(Some(Err(e))) => {
                if let Ok(mut slot) = self.shared.client_error.lock() {
                    slot.get_or_insert_with(|| e.clone());
                }
            }
            _ => {}
        }
        item
    }
}

/// The backend's events under the deadline: messages are counted, a message
/// or status landing after the deadline (timers tick in milliseconds) is
/// late, and the stream always ends with trailers or exactly one error. The
/// drain's cut ends it with [`GatewayError::ShuttingDown`], which every
/// adapter renders as its protocol's terminal record.
struct Guarded {
    events: futures_util::stream::BoxStream<'static, Result<CallEvent, GatewayError>>,
    /// Armed the first time the backend makes us wait (a unary reply that is
    /// already there never needs a timer).
    sleep: Option<Pin<Box<Sleep>>>,
    /// The drain's cut, armed with `sleep`; a backend that never waits is
    /// cut between two messages.
    cut: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    late: Late,
    done: bool,
    /// The call's load-shedding slots: released when the call ends (its
    /// last event, or the stream dropped).
    slots: Option<Admitted>,
}

impl Guarded {
    fn end(&mut self, e: GatewayError) -> Poll<Option<Result<CallEvent, GatewayError>>> {
        self.done = true;
        self.slots = None;
        Poll::Ready(Some(Err(e)))
    }

    /// While the backend makes us wait: the deadline, then the drain's cut.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<GatewayError> {
        let deadline = self.late.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            let timeout = self.late.timeout;
            return Poll::Ready(self.late.refine(GatewayError::DeadlineExceeded(timeout)));
        }
        if self.cut.is_none() {
            let Some(shutdown) = self.late.shutdown.clone() else {
                return Poll::Pending;
            };
            self.cut = Some(Box::pin(async move { shutdown.until_cut().await }));
        }
        match self.cut.as_mut().map(|cut| cut.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(GatewayError::ShuttingDown),
            _ => Poll::Pending,
        }
    }
}

impl Stream for Guarded {
    type Item = Result<CallEvent, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.events.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(CallEvent::Message(m)))) => {
                // Once the timer is armed it tells (no clock read per message).
                let late = match &self.sleep {
                    Some(sleep) => sleep.is_elapsed(),
                    None => self.late.expired(),
                };
                if late {
                    let timeout = self.late.timeout;
                    return self.end(GatewayError::DeadlineExceeded(timeout));
                }
                if self.late.is_cut() {
                    return self.end(GatewayError::ShuttingDown);
                }
                let shared = &self.late.shared;
                shared.sent.fetch_add(1, Ordering::Relaxed);
                shared
                    .bytes_sent
                    .fetch_add(m.len() as u64, Ordering::Relaxed);
                Poll::Ready(Some(Ok(CallEvent::Message(m))))
            }
            Poll::Ready(Some(Ok(CallEvent::Trailers(t)))) => {
                if let Some(client) = self.late.shared.client_error() {
                    return self.end(client);
                }
                if self.late.expired() {
                    let timeout = self.late.timeout;
                    return self.end(GatewayError::DeadlineExceeded(timeout));
                }
                self.done = true;
                self.slots = None;
                Poll::Ready(Some(Ok(CallEvent::Trailers(t))))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = self.late.refine(e);
                self.end(e)
            }
            Poll::Ready(None) => self.end(GatewayError::BadGateway(
                "the backend ended the call without a status".into(),
            )),
            Poll::Pending => match self.poll_timers(cx) {
                Poll::Ready(e) => self.end(e),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::stream;

    /// `events` under an hour's deadline, cut by `shutdown`.
    fn guarded(
        events: stream::BoxStream<'static, Result<CallEvent, GatewayError>>,
        shutdown: &Shutdown,
    ) -> Guarded {
        let timeout = Duration::from_secs(3600);
        Guarded {
            events,
            sleep: None,
            cut: None,
            late: Late {
                deadline: Instant::now() + timeout,
                timeout,
                shared: Arc::default(),
                shutdown: Some(shutdown.clone()),
            },
            done: false,
            slots: None,
        }
    }

    fn is_shutting_down(event: Option<Result<CallEvent, GatewayError>>) -> bool {
        matches!(event, Some(Err(GatewayError::ShuttingDown)))
    }

    #[tokio::test]
    async fn the_cut_ends_a_stream_whose_backend_never_waits() {
        let shutdown = Shutdown::default();
        let message = || Ok(CallEvent::Message(Bytes::from_static(b"m")));
        let mut events = guarded(stream::repeat_with(message).boxed(), &shutdown);
        assert!(matches!(
            events.next().await,
            Some(Ok(CallEvent::Message(_)))
        ));
        shutdown.cut();
        assert!(is_shutting_down(events.next().await));
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn the_cut_ends_a_waiting_stream() {
        let shutdown = Shutdown::default();
        let mut events = guarded(stream::pending().boxed(), &shutdown);
        let cut = shutdown.clone();
        tokio::spawn(async move { cut.cut() });
        assert!(is_shutting_down(events.next().await));
    }

    #[tokio::test]
    async fn the_cut_ends_a_call_waiting_for_its_answer() {
        let shutdown = Shutdown::default();
        let late = guarded(stream::empty().boxed(), &shutdown).late;
        let cut = shutdown.clone();
        tokio::spawn(async move { cut.cut() });
        let answer = std::future::pending::<Result<(), GatewayError>>();
        assert!(matches!(
            late.bound(answer).await,
            Err(GatewayError::ShuttingDown)
        ));
    }
}
