//! Where calls go, resolved once at load time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::uri::PathAndQuery;
use prost_reflect::MethodDescriptor;

use crate::call::{Backend, grpc_path};

/// One destination: a gRPC method as reached through one entry point (a
/// REST route, or the method's gRPC path). Built when the gateway loads;
/// the request path only reads it.
#[derive(Clone)]
pub struct Target {
    /// Unique in the process, across reloads: hooks key per-destination
    /// state by it (the metrics hook's series handles).
    pub id: u64,
    /// The method.
    pub method: MethodDescriptor,
    /// `/pkg.Service/Method`.
    pub path: PathAndQuery,
    /// The REST route as `protogate routes` prints it (`GET /v1/{name=shelves/*}`),
    /// for targets reached through one.
    pub route: Option<Arc<str>>,
    /// The backend, when one is configured for the method's service.
    pub backend: Option<Arc<dyn Backend>>,
    /// The backend's name for logs and metrics: the upstream's name, `mock`,
    /// or `none`.
    pub upstream: Arc<str>,
    /// The deadline when the client sets none.
    pub timeout: Duration,
    /// Whether the backend reads [`crate::call::CallContext`].
    pub wants_context: bool,
    /// The largest request metadata sent on (as HTTP/2 counts header lists).
    pub max_metadata_bytes: usize,
    /// The method's `idempotency_level` option.
    pub idempotency: Idempotency,
    /// The load-shedding slots its calls take (`shedding:`); `None`: no
    /// limit applies.
    pub admission: Option<Arc<super::shed::Admission>>,
}

/// A method's `idempotency_level` (descriptor.proto's `MethodOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idempotency {
    /// Not declared.
    #[default]
    Unknown,
    /// `NO_SIDE_EFFECTS`: safe to call with GET and to cache.
    NoSideEffects,
    /// `IDEMPOTENT`: safe to repeat.
    Idempotent,
}

impl Idempotency {
    /// The level `method` declares.
    pub fn of(method: &MethodDescriptor) -> Idempotency {
        let level = method
            .options()
            .get_field_by_name("idempotency_level")
            .and_then(|v| v.as_enum_number());
        match level {
            Some(1) => Idempotency::NoSideEffects,
            Some(2) => Idempotency::Idempotent,
            _ => Idempotency::Unknown,
        }
    }
}

/// Metadata size limit when none is configured: below the smallest default
/// of common gRPC servers (gRPC C-core's 8 KiB soft limit, counted with the
/// pseudo-headers and the gateway's own headers; tonic/hyper and grpc-go
/// accept 16 KiB and more).
pub const DEFAULT_MAX_METADATA_BYTES: usize = 7 * 1024;

impl Target {
    /// A target for `method` through `backend` (named `upstream`).
    pub fn new(
        method: MethodDescriptor,
        backend: Option<Arc<dyn Backend>>,
        upstream: Arc<str>,
        timeout: Duration,
    ) -> Target {
        Target {
            id: next_id(),
            idempotency: Idempotency::of(&method),
            path: grpc_path(&method),
            wants_context: backend.as_ref().is_some_and(|b| b.wants_context()),
            method,
            route: None,
            backend,
            upstream,
            timeout,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
            admission: None,
        }
    }

    /// The same destination reached through the REST route `key`.
    pub fn through_route(&self, key: &str) -> Target {
        Target {
            id: next_id(),
            route: Some(Arc::from(key)),
            ..self.clone()
        }
    }
}

/// Ids start at 1: 0 stands for "no target" where one is needed.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("method", &self.method.full_name())
            .field("route", &self.route)
            .field("upstream", &self.upstream)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
