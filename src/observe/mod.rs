//! Observability: Prometheus metrics recorded at the dispatch seam
//! ([`metrics::Metrics`], a [`Hook`](crate::pipeline::Hook)) and by the
//! reload machinery, rendered on the admin listener's `/metrics`.

pub mod metrics;
