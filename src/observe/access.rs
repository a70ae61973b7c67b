//! The access log: one `tracing` event per request, at INFO under the
//! target `protogate::access`, when its answer is complete or abandoned.
//! It names what the request reached (resolved method and route, never the
//! query), never tokens or bodies; `subject` is the verified token's `sub`,
//! `peer` the verified client certificate's subject (mTLS), `trace_id` the
//! request's trace when tracing is on.

use crate::auth::Subject;
use crate::observe::metrics::code_name;
use crate::pipeline::{Hook, Outcome, PeerIdentity};

/// The hook that writes the access log.
#[derive(Debug, Default, Clone, Copy)]
pub struct AccessLog;

impl Hook for AccessLog {
    fn on_outcome(&self, o: &Outcome<'_>) {
        let method = o
            .target
            .map_or("unknown", |t| t.path.as_str().trim_start_matches('/'));
        let route = o.target.and_then(|t| t.route.as_deref()).unwrap_or("none");
        let upstream = o.target.map_or("none", |t| &*t.upstream);
        tracing::info!(
            target: "protogate::access",
            protocol = o.protocol.as_str(),
            http_method = %o.http_method,
            method,
            route,
            status = o.http_status.as_u16(),
            grpc_code = code_name(o.code),
            latency_ms = o.elapsed.as_secs_f64() * 1000.0,
            messages_in = o.messages_received,
            messages_out = o.messages_sent,
            bytes_in = o.bytes_received,
            bytes_out = o.bytes_sent,
            subject = o.extensions.get::<Subject>().map_or("", |s| s.0.as_str()),
            peer = o.extensions.get::<PeerIdentity>().map_or("", |p| &*p.subject),
            trace_id = super::trace::trace_id(o.extensions).unwrap_or_default(),
            request_id = o.request_id.unwrap_or(""),
            upstream,
            error = o.error.map(ToString::to_string).unwrap_or_default(),
            "request"
        );
    }
}
