//! Observability at the dispatch seam: Prometheus metrics
//! ([`metrics::Metrics`], rendered on the admin listener's `/metrics`), the
//! access log ([`access::AccessLog`]) and tracing ([`trace::Tracing`], spans
//! exported over OTLP by [`trace::Otlp`]), all [`Hook`](crate::pipeline::Hook)s;
//! and where log lines go ([`log_writer`]).

pub mod access;
pub mod log_writer;
pub mod metrics;
mod series;
pub mod trace;
