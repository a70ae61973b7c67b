//! The seam where cross-cutting policies run: authentication, metrics,
//! access logs, limits. Every protocol reaches the backend through
//! [`Exchange::dispatch`](super::Exchange::dispatch), which runs
//! [`Hook::on_call`] with the resolved [`Target`] in hand; every request,
//! including those refused before a call exists (404, 405, 400, 413, 415),
//! ends with one [`Hook::on_outcome`].

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderMap, Method, StatusCode};
use tonic::Code;

use super::Target;
use crate::call::Call;
use crate::status::GatewayError;

/// The protocol a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// REST/JSON (transcoded).
    Rest,
    /// Native gRPC (re-framed).
    Grpc,
    /// gRPC-Web (binary or base64 text), translated to native gRPC.
    GrpcWeb,
    /// The Connect protocol (JSON or binary messages).
    Connect,
    /// Streaming methods over WebSocket (JSON frames).
    WebSocket,
}

impl Protocol {
    /// Lowercase name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rest => "rest",
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::Connect => "connect",
            Protocol::WebSocket => "websocket",
        }
    }
}

/// A request that just arrived, as [`Hook::on_begin`] sees it.
#[derive(Debug)]
pub struct Begin<'a> {
    /// The protocol of the request.
    pub protocol: Protocol,
    /// The request's URI (path and query as the client sent them).
    pub uri: &'a http::Uri,
    /// The request's HTTP headers, as received.
    pub headers: &'a HeaderMap,
    /// The request's per-hook state: what a hook puts here it finds again in
    /// [`Call::extensions`] and [`Outcome::extensions`].
    pub extensions: &'a mut http::Extensions,
}

/// The verified client certificate of a TLS connection (mTLS): the listener
/// puts it in each request's extensions, and hooks find it in
/// [`Begin::extensions`] (then [`Call::extensions`]). Absent on plaintext
/// connections and when the client sent no certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject as an RFC 4514 string, last RDN first (`CN=client,O=Acme`).
    pub subject: Arc<str>,
    /// The subject alternative names, typed as OpenSSL prints them:
    /// `DNS:host`, `URI:spiffe://…`, `IP:10.0.0.1`, `email:a@b`.
    pub sans: Arc<[String]>,
}

/// The address of the client's end of the connection (the TCP peer: a
/// proxy's address when the gateway sits behind one). The listener puts it
/// in each request's extensions, and hooks find it in [`Begin::extensions`]
/// (then [`Call::extensions`]); absent for requests that did not come
/// through the listener (tests driving the router directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// What [`Hook::on_call`] sees besides the call itself.
#[derive(Debug)]
pub struct CallInfo<'a> {
    /// The protocol of the request.
    pub protocol: Protocol,
    /// Where the call goes.
    pub target: &'a Target,
    /// The request's HTTP headers, as received.
    pub headers: &'a HeaderMap,
}

/// How one request ended.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The protocol of the request.
    pub protocol: Protocol,
    /// The HTTP method of the request.
    pub http_method: &'a Method,
    /// The request's `x-request-id` (the listener sets one when the client
    /// sent none).
    pub request_id: Option<&'a str>,
    /// The resolved destination; `None` when the request was refused before
    /// one was found (no route, wrong method, unknown gRPC method).
    pub target: Option<&'a Target>,
    /// The HTTP status answered (200 for gRPC, whose status is in trailers;
    /// 499 when the client went away first).
    pub http_status: StatusCode,
    /// The gRPC code the request ended with (`Ok` on success).
    pub code: Code,
    /// The error, when the request failed.
    pub error: Option<&'a GatewayError>,
    /// From arrival to the end of the answer.
    pub elapsed: Duration,
    /// Whether the call reached the backend (every hook accepted it; see
    /// [`Hook::on_dispatch`]).
    pub dispatched: bool,
    /// How long the backend took to answer with response headers (or an
    /// error), when it was called.
    pub backend_latency: Option<Duration>,
    /// Request messages read from the client.
    pub messages_received: u64,
    /// Response messages sent to the client.
    pub messages_sent: u64,
    /// The encoded size of the request messages read, in bytes.
    pub bytes_received: u64,
    /// The encoded size of the response messages sent, in bytes.
    pub bytes_sent: u64,
    /// What hooks put in [`Begin::extensions`] and [`Call::extensions`].
    pub extensions: &'a http::Extensions,
}

/// A policy at the dispatch seam. Both methods default to doing nothing, so
/// a hook implements only what it needs.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use protogate::pipeline::{Hook, Outcome};
///
/// /// Counts requests that ended in an error.
/// #[derive(Default)]
/// struct Failures(AtomicU64);
///
/// impl Hook for Failures {
///     fn on_outcome(&self, outcome: &Outcome<'_>) {
///         if outcome.error.is_some() {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
/// ```
pub trait Hook: Send + Sync + 'static {
    /// Runs when a request arrives, before it is resolved. Every request
    /// that begins ends with one [`on_outcome`](Self::on_outcome).
    fn on_begin(&self, begin: &mut Begin<'_>) {
        let _ = begin;
    }

    /// Runs before [`on_call`](Self::on_call) once the request is resolved:
    /// a hook that must wait for something first (fresh keys after a
    /// rotation) returns a future, which the exchange awaits within the
    /// call's deadline. The fast path returns `None` and costs nothing.
    fn prepare(
        &self,
        info: &CallInfo<'_>,
        extensions: &http::Extensions,
    ) -> Option<BoxFuture<'static, ()>> {
        let _ = (info, extensions);
        None
    }

    /// Runs before the backend sees the call; an `Err` refuses it (and is
    /// answered in the request's protocol). May edit the call's metadata.
    fn on_call(&self, call: &mut Call, info: &CallInfo<'_>) -> Result<(), GatewayError> {
        let _ = (call, info);
        Ok(())
    }

    /// Runs after every hook's [`on_call`](Self::on_call) accepted the
    /// call: a check that must ask another service (a global rate limit)
    /// returns a future, which the exchange awaits within the call's
    /// deadline; its `Err` refuses the call. The fast path returns `None`.
    fn admit(
        &self,
        call: &Call,
        info: &CallInfo<'_>,
    ) -> Option<BoxFuture<'static, Result<(), GatewayError>>> {
        let _ = (call, info);
        None
    }

    /// Runs when every hook accepted the call and it goes to the backend;
    /// its outcome then has `dispatched` set.
    fn on_dispatch(&self, info: &CallInfo<'_>) {
        let _ = info;
    }

    /// Runs once per request, when its answer is complete or abandoned.
    fn on_outcome(&self, outcome: &Outcome<'_>) {
        let _ = outcome;
    }
}

/// The hooks of a gateway, in the order they run. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hooks(Arc<[Arc<dyn Hook>]>);

impl Hooks {
    /// These hooks, run in order.
    pub fn new(hooks: Vec<Arc<dyn Hook>>) -> Hooks {
        Hooks(hooks.into())
    }

    /// These hooks with `first` run before them.
    pub fn prepend(&self, first: Arc<dyn Hook>) -> Hooks {
        Hooks(
            std::iter::once(first)
                .chain(self.0.iter().cloned())
                .collect(),
        )
    }

    /// True when there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn on_begin(&self, begin: &mut Begin<'_>) {
        for h in self.0.iter() {
            h.on_begin(begin);
        }
    }

    /// Awaits what the hooks need before their `on_call`, until `deadline`.
    pub(super) async fn prepare(
        &self,
        info: &CallInfo<'_>,
        extensions: &http::Extensions,
        deadline: tokio::time::Instant,
    ) {
        for h in self.0.iter() {
            if let Some(wait) = h.prepare(info, extensions) {
                let _ = tokio::time::timeout_at(deadline, wait).await;
            }
        }
    }

    pub(super) fn on_call(&self, call: &mut Call, info: &CallInfo<'_>) -> Result<(), GatewayError> {
        self.0.iter().try_for_each(|h| h.on_call(call, info))
    }

    /// The hooks' [`Hook::admit`] checks, in order (built before any runs,
    /// so the call is not held across an await).
    pub(super) fn admit(
        &self,
        call: &Call,
        info: &CallInfo<'_>,
    ) -> Vec<BoxFuture<'static, Result<(), GatewayError>>> {
        self.0.iter().filter_map(|h| h.admit(call, info)).collect()
    }

    pub(super) fn on_dispatch(&self, info: &CallInfo<'_>) {
        for h in self.0.iter() {
            h.on_dispatch(info);
        }
    }

    pub(super) fn on_outcome(&self, outcome: &Outcome<'_>) {
        for h in self.0.iter() {
            h.on_outcome(outcome);
        }
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hooks({})", self.0.len())
    }
}
