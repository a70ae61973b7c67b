//! The gateway's Prometheus metrics. Every module records through the
//! `metrics` facade; the binary installs the Prometheus recorder
//! ([`install`]) and the admin listener renders it ([`render`]). Without a
//! recorder (library use, most tests) recording costs nothing.
//!
//! Labels are the resolved method and route template, never the raw path,
//! so cardinality is bounded by the descriptors.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Gauge, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tonic::Code;

use super::series::{Series, SeriesCache, SeriesKey};
use crate::pipeline::{Begin, CallInfo, Hook, Outcome, Protocol, Target};
use crate::status::GatewayError;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets, in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Stream lifetimes, in seconds: 10 ms to 1 h.
const STREAM_BUCKETS: &[f64] = &[
    0.01, 0.1, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// Message sizes, in bytes: 64 B to 16 MiB, by fours.
const SIZE_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

/// Installs the Prometheus recorder for this process (once; later calls
/// are no-ops) and records the build info. Spawns the recorder's upkeep on
/// the current runtime.
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("protogate_stream_duration_seconds".into()),
            STREAM_BUCKETS,
        )
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size_bytes".into()), SIZE_BUCKETS))
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let _ = HANDLE.set(handle);
    describe();
    gauge!("protogate_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(())
}

/// The metrics in Prometheus' text format, when a recorder is installed.
pub fn render() -> Option<String> {
    HANDLE.get().map(PrometheusHandle::render)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "protogate_requests_total",
        "Requests answered, by protocol, method, route, gRPC code and HTTP status."
    );
    describe_histogram!(
        "protogate_request_duration_seconds",
        Unit::Seconds,
        "Time to answer unary requests, from arrival to the last byte."
    );
    describe_gauge!("protogate_requests_in_flight", "Requests being served.");
    describe_gauge!("protogate_streams_active", "Streaming calls open.");
    describe_histogram!(
        "protogate_stream_duration_seconds",
        Unit::Seconds,
        "How long streaming calls lasted."
    );
    describe_counter!(
        "protogate_stream_messages_total",
        "Messages of streaming calls, by direction (received from the client, sent to it)."
    );
    describe_histogram!(
        "protogate_upstream_request_duration_seconds",
        Unit::Seconds,
        "Time from calling a backend to its response headers."
    );
    describe_counter!(
        "protogate_upstream_errors_total",
        "Backend calls that failed below gRPC: unreachable, not gRPC, or out of time."
    );
    describe_counter!(
        "protogate_upstream_retries_total",
        "Calls to an upstream tried again under its retry policy, by the failure retried (unreachable: no gRPC status)."
    );
    describe_counter!(
        "protogate_upstream_retries_skipped_total",
        "Retryable failures passed on without a retry, by reason: budget, deadline, attempts."
    );
    describe_counter!(
        "protogate_deadline_exceeded_total",
        "Requests that ended because their deadline passed."
    );
    describe_counter!(
        "protogate_cancelled_total",
        "Requests the client abandoned."
    );
    describe_counter!(
        "protogate_config_reloads_total",
        "Configuration reloads, by result."
    );
    describe_histogram!(
        "protogate_request_size_bytes",
        Unit::Bytes,
        "Encoded size of a request's messages (all of them, for streams)."
    );
    describe_histogram!(
        "protogate_response_size_bytes",
        Unit::Bytes,
        "Encoded size of a response's messages (all of them, for streams)."
    );
    describe_counter!(
        "protogate_auth_rejections_total",
        "Requests refused by authentication (401) or authorization (403), by reason."
    );
    describe_counter!(
        "protogate_jwks_fetches_total",
        "JWKS fetches from providers' jwks_url, by result."
    );
    describe_gauge!(
        "protogate_upstream_healthy",
        "Whether the upstream's last grpc.health.v1 check made it ready (1) or not (0)."
    );
    describe_gauge!("protogate_build_info", "The running build (always 1).");
    describe_gauge!(
        "protogate_routes_skipped",
        "Rules of the serving configuration that are skipped (not served), see the WARN log."
    );
    describe_counter!(
        "protogate_shed_total",
        "Calls refused by load shedding (503, or 429 for max_streams_per_client), by the limit that was full and the upstream."
    );
    describe_gauge!(
        "protogate_shed_slots_in_use",
        "Slots of each configured load-shedding limit held by calls and streams in flight (per upstream for max_in_flight_per_upstream)."
    );
    describe_counter!(
        "protogate_rate_limited_total",
        "Calls refused by a local rate limit (429 RESOURCE_EXHAUSTED), by the limit's name."
    );
    describe_counter!(
        "protogate_rate_limit_service_total",
        "Decisions asked of the global rate limit service (rate_limit_service:), by result: ok, over_limit (429), failed_open (the service failed, the call went on), failed_closed (the service failed, 503)."
    );
    describe_gauge!(
        "protogate_rate_limit_keys",
        "Keys (client addresses, header values, subjects) holding a bucket of a keyed rate limit, at its last sweep."
    );
    describe_counter!(
        "protogate_tls_handshake_failures_total",
        "TLS handshakes on the listener that failed or timed out (bad or missing client certificates, plaintext clients)."
    );
}

/// Records how many rules the serving configuration skips.
pub fn routes_skipped(count: usize) {
    gauge!("protogate_routes_skipped").set(count as f64);
}

/// Records a configuration reload.
pub fn reload(ok: bool) {
    if ok {
        super::series::invalidate();
    }
    let result = if ok { "success" } else { "failure" };
    counter!("protogate_config_reloads_total", "result" => result).increment(1);
}

/// The hook that records every request. Series handles are cached per
/// destination ([`SeriesCache`]).
#[derive(Default)]
pub struct Metrics {
    series: SeriesCache,
    in_flight: OnceLock<[Gauge; 5]>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// `protogate_requests_in_flight` of `protocol`.
    fn in_flight(&self, protocol: Protocol) -> &Gauge {
        let gauges = self.in_flight.get_or_init(|| {
            PROTOCOLS.map(|p| gauge!("protogate_requests_in_flight", "protocol" => p.as_str()))
        });
        let i = PROTOCOLS.iter().position(|p| *p == protocol).unwrap_or(0);
        &gauges[i]
    }
}

const PROTOCOLS: [Protocol; 5] = [
    Protocol::Rest,
    Protocol::Grpc,
    Protocol::GrpcWeb,
    Protocol::Connect,
    Protocol::WebSocket,
];

impl Hook for Metrics {
    fn on_begin(&self, begin: &mut Begin<'_>) {
        self.in_flight(begin.protocol).increment(1.0);
    }

    fn on_dispatch(&self, info: &CallInfo<'_>) {
        if is_streaming(info.target) {
            gauge!(
                "protogate_streams_active",
                "protocol" => info.protocol.as_str(),
                "method" => method_label(Some(info.target)),
            )
            .increment(1.0);
        }
    }

    fn on_outcome(&self, o: &Outcome<'_>) {
        self.in_flight(o.protocol).decrement(1.0);
        let key = SeriesKey {
            target: o.target.map_or(0, |t| t.id),
            protocol: o.protocol.as_str(),
            code: o.code as i32,
            status: o.http_status.as_u16(),
        };
        let series = self.series.get(key, || register(o));
        series.requests.increment(1);
        if let Some(h) = &series.duration {
            h.record(o.elapsed.as_secs_f64());
        }
        if o.dispatched
            && let Some((request, response)) = &series.sizes
        {
            request.record(o.bytes_received as f64);
            response.record(o.bytes_sent as f64);
        }
        if let (Some(h), Some(latency)) = (&series.upstream, o.backend_latency) {
            h.record(latency.as_secs_f64());
        }
        let method = || method_label(o.target);
        if o.target.is_some_and(is_streaming) {
            streaming(
                o,
                key.protocol,
                &method(),
                code_name(o.code),
                o.elapsed.as_secs_f64(),
            );
        }
        if o.error.is_some() {
            kept_apart(o, key.protocol, &method());
            upstream_error(o);
        }
    }
}

/// The series an outcome like `o` records to.
fn register(o: &Outcome<'_>) -> Series {
    let protocol = o.protocol.as_str();
    let method = method_label(o.target);
    let route = o
        .target
        .and_then(|t| t.route.as_deref())
        .unwrap_or("none")
        .to_string();
    let code = code_name(o.code);
    let requests = counter!(
        "protogate_requests_total",
        "protocol" => protocol,
        "method" => method.clone(),
        "route" => route.clone(),
        "code" => code,
        "status" => o.http_status.as_str().to_string(),
    );
    let duration = (!o.target.is_some_and(is_streaming)).then(|| {
        histogram!(
            "protogate_request_duration_seconds",
            "protocol" => protocol,
            "method" => method.clone(),
            "route" => route,
            "code" => code,
        )
    });
    let sizes = o.target.map(|_| {
        let size = |name: &'static str| {
            histogram!(name, "protocol" => protocol, "method" => method.clone())
        };
        (
            size("protogate_request_size_bytes"),
            size("protogate_response_size_bytes"),
        )
    });
    let upstream = o.target.map(|t| {
        histogram!(
            "protogate_upstream_request_duration_seconds",
            "upstream" => t.upstream.to_string(),
            "method" => method.clone(),
        )
    });
    Series {
        requests,
        duration,
        sizes,
        upstream,
    }
}

fn streaming(
    o: &Outcome<'_>,
    protocol: &'static str,
    method: &str,
    code: &'static str,
    seconds: f64,
) {
    if o.dispatched {
        gauge!("protogate_streams_active", "protocol" => protocol, "method" => method.to_string())
            .decrement(1.0);
    }
    histogram!(
        "protogate_stream_duration_seconds",
        "protocol" => protocol,
        "method" => method.to_string(),
        "code" => code,
    )
    .record(seconds);
    for (direction, n) in [("received", o.messages_received), ("sent", o.messages_sent)] {
        counter!(
            "protogate_stream_messages_total",
            "protocol" => protocol,
            "method" => method.to_string(),
            "direction" => direction,
        )
        .increment(n);
    }
}

/// Deadlines, cancellations and auth refusals are counted on their own as
/// well, so that they can be told from failures.
fn kept_apart(o: &Outcome<'_>, protocol: &'static str, method: &str) {
    if let Some(
        GatewayError::Unauthenticated { reason, .. }
        | GatewayError::PermissionDenied { reason, .. },
    ) = o.error
    {
        counter!(
            "protogate_auth_rejections_total",
            "protocol" => protocol,
            "method" => method.to_string(),
            "reason" => reason.as_str(),
        )
        .increment(1);
        return;
    }
    let name = match o.code {
        Code::DeadlineExceeded => "protogate_deadline_exceeded_total",
        Code::Cancelled => "protogate_cancelled_total",
        _ => return,
    };
    counter!(name, "protocol" => protocol, "method" => method.to_string()).increment(1);
}

/// Backend calls that failed below gRPC, by upstream and kind.
fn upstream_error(o: &Outcome<'_>) {
    let Some(target) = o.target.filter(|_| o.backend_latency.is_some()) else {
        return;
    };
    let kind = match o.error {
        Some(GatewayError::UpstreamUnavailable(_)) => "unavailable",
        Some(GatewayError::BadGateway(_)) => "bad_gateway",
        Some(GatewayError::DeadlineExceeded(_)) => "deadline_exceeded",
        _ => return,
    };
    counter!(
        "protogate_upstream_errors_total",
        "upstream" => target.upstream.to_string(),
        "kind" => kind,
    )
    .increment(1);
}

fn is_streaming(t: &Target) -> bool {
    t.method.is_client_streaming() || t.method.is_server_streaming()
}

/// `package.Service/Method`, or `unknown` before one was resolved.
fn method_label(target: Option<&Target>) -> String {
    target.map_or_else(
        || "unknown".to_string(),
        |t| t.path.as_str().trim_start_matches('/').to_string(),
    )
}

/// The code's name as gRPC spells it (`NOT_FOUND`), for labels.
pub use crate::status::code_name;
