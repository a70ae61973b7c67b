//! Observability at the dispatch seam: Prometheus metrics
//! ([`metrics::Metrics`], rendered on the admin listener's `/metrics`) and
//! the access log ([`access::AccessLog`]), both [`Hook`](crate::pipeline::Hook)s.

pub mod access;
pub mod metrics;
