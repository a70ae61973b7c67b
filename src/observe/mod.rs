//! Observability at the dispatch seam: Prometheus metrics
//! ([`metrics::Metrics`], rendered on the admin listener's `/metrics`), the
//! access log ([`access::AccessLog`]) and tracing ([`trace::Tracing`], spans
//! exported over OTLP by [`trace::Otlp`]), all [`Hook`](crate::pipeline::Hook)s.

pub mod access;
pub mod metrics;
pub mod trace;
