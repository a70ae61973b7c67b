//! Distributed tracing: one SERVER span per request, exported over OTLP.
//!
//! The [`Tracing`] hook continues the client's W3C trace context
//! (`traceparent`/`tracestate`) or starts a new trace, and hands the
//! gateway's own span to the upstream in the call's metadata, so the
//! backend's spans are its children. Spans follow the OpenTelemetry RPC
//! conventions: named `package.Service/Method` once the request is
//! resolved, with `rpc.*`, `http.*` and `protogate.*` attributes.
//!
//! [`Otlp`] owns the exporter: an OpenTelemetry SDK tracer provider with a
//! batch processor (its own thread) and the OTLP/gRPC exporter. It exists
//! only when an endpoint is configured; without it no hook is installed and
//! the client's `traceparent` reaches the upstream unchanged (it is on the
//! forwarded-header allowlist).

use std::borrow::Cow;

use http::{HeaderMap, Method};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::call::Call;
use crate::observe::metrics::code_name;
use crate::pipeline::{Begin, CallInfo, Hook, Outcome, Target};
use crate::status::GatewayError;

/// The OTLP export pipeline: a tracer provider whose batch processor sends
/// spans to an OTLP/gRPC collector. Sampling is the SDK's default,
/// parent-based always-on (a sampled client trace is recorded, an unsampled
/// one is not, a new trace always is); `OTEL_TRACES_SAMPLER` and
/// `OTEL_TRACES_SAMPLER_ARG` change it, `OTEL_BSP_*` tune the batches.
///
/// ```no_run
/// # async fn run() -> Result<(), String> {
/// use std::sync::Arc;
/// use protogate::observe::trace::Otlp;
/// use protogate::pipeline::Hook;
///
/// let otlp = Otlp::start("http://127.0.0.1:4317", "protogate")?;
/// let hooks: Vec<Arc<dyn Hook>> = vec![Arc::new(otlp.hook())];
/// // ... serve with `hooks` ...
/// otlp.shutdown().await?; // exports what is still queued
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Otlp {
    provider: SdkTracerProvider,
}

impl Otlp {
    /// Builds the exporter for the collector at `endpoint` (e.g.
    /// `http://127.0.0.1:4317`: cleartext HTTP/2, there is no TLS), naming
    /// the gateway `service_name`. Must be called inside a Tokio runtime:
    /// the gRPC channel lives there (it connects lazily, so a collector that
    /// is down does not stop the gateway; its spans are dropped and the
    /// failure logged).
    pub fn start(endpoint: &str, service_name: &str) -> Result<Otlp, String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("the OTLP exporter needs a Tokio runtime".into());
        }
        // The exporter would take a bare `host:port` for https and then
        // refuse it for want of a TLS feature: say what works instead.
        if !endpoint.starts_with("http://") {
            return Err(format!(
                "OTLP endpoint {endpoint}: expected http://host:port (OTLP over gRPC, without TLS)"
            ));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| format!("OTLP endpoint {endpoint}: {e}"))?;
        let resource = Resource::builder()
            .with_service_name(service_name.to_string())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Otlp { provider })
    }

    /// The hook that makes the spans this pipeline exports.
    pub fn hook(&self) -> Tracing {
        let scope = InstrumentationScope::builder("protogate")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Tracing::new(self.provider.tracer_with_scope(scope))
    }

    /// Exports every ended span now. Blocks until the collector answered
    /// (or the export timed out): from async code, call it through
    /// `tokio::task::spawn_blocking`, since the export itself runs on the
    /// runtime.
    pub fn flush(&self) -> Result<(), String> {
        self.provider.force_flush().map_err(|e| e.to_string())
    }

    /// Exports what is still queued and stops the exporter.
    pub async fn shutdown(self) -> Result<(), String> {
        // The SDK's shutdown blocks on its processor thread, whose export
        // needs this runtime: wait for it off the runtime's threads.
        tokio::task::spawn_blocking(move || self.provider.shutdown())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// The hook that traces every request (see the [module](self) docs). It
/// goes first among the hooks, so that requests a later hook refuses are
/// traced too.
#[derive(Debug, Clone)]
pub struct Tracing {
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

/// The request's span, in [`Begin::extensions`]: a context holding it (the
/// span itself sits behind the context's lock, so [`Hook::on_outcome`],
/// which sees the extensions shared, can still end it).
#[derive(Clone)]
struct ServerSpan(Context);

/// The trace id of the request's span (32 hex digits), when tracing is on:
/// the access log carries it, so a log line leads to its trace.
pub fn trace_id(extensions: &http::Extensions) -> Option<String> {
    let ServerSpan(cx) = extensions.get::<ServerSpan>()?;
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

impl Tracing {
    /// A hook making its spans with `tracer`.
    pub fn new(tracer: SdkTracer) -> Tracing {
        Tracing {
            tracer,
            propagator: TraceContextPropagator::new(),
        }
    }
}

impl Hook for Tracing {
    fn on_begin(&self, begin: &mut Begin<'_>) {
        // Never the thread's current context: the request's only parent is
        // what the client sent (an invalid or missing one starts a trace).
        let parent = self
            .propagator
            .extract_with_context(&Context::new(), &Headers(begin.headers));
        // Sized for every attribute set later: one allocation.
        let mut attributes = Vec::with_capacity(16);
        attributes.push(KeyValue::new("rpc.system", "grpc"));
        attributes.push(KeyValue::new("protogate.protocol", begin.protocol.as_str()));
        // Named for the protocol until the outcome names the method.
        let span = self
            .tracer
            .span_builder(begin.protocol.as_str())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        begin.extensions.insert(ServerSpan(parent.with_span(span)));
    }

    fn on_call(&self, call: &mut Call, _info: &CallInfo<'_>) -> Result<(), GatewayError> {
        // The upstream continues the gateway's span, not the client's.
        if let Some(ServerSpan(cx)) = call.extensions.get::<ServerSpan>() {
            self.propagator
                .inject_context(cx, &mut Metadata(&mut call.metadata));
        }
        Ok(())
    }

    fn on_outcome(&self, o: &Outcome<'_>) {
        let Some(ServerSpan(cx)) = o.extensions.get::<ServerSpan>() else {
            return;
        };
        let span = cx.span();
        if span.is_recording() {
            let method = http_method(o.http_method);
            span.update_name(span_name(o.target, method));
            span.set_attributes(outcome_attributes(o, method));
            if is_server_error(o) {
                let message = o.error.map(ToString::to_string).unwrap_or_default();
                span.set_status(Status::error(message));
            }
        }
        span.end();
    }
}

/// `package.Service/Method`; with nothing resolved, the HTTP method (the
/// HTTP conventions' name when no route matched).
fn span_name(target: Option<&Target>, http_method: &'static str) -> Cow<'static, str> {
    match target {
        Some(t) => {
            let path = t.path.as_str();
            Cow::Owned(path.strip_prefix('/').unwrap_or(path).to_string())
        }
        None if http_method == "_OTHER" => Cow::Borrowed("HTTP"),
        None => Cow::Borrowed(http_method),
    }
}

/// What the outcome adds to the span (no container allocated: the span's
/// own attribute list was sized for these in `on_begin`).
fn outcome_attributes(
    o: &Outcome<'_>,
    http_method: &'static str,
) -> impl Iterator<Item = KeyValue> {
    let t = o.target;
    // The route key is `VERB template`; the attribute is the template.
    let template = t
        .and_then(|t| t.route.as_deref())
        .map(|r| r.split_once(' ').map_or(r, |(_, template)| template));
    [
        t.map(|t| {
            let service = t.method.parent_service();
            KeyValue::new("rpc.service", service.full_name().to_string())
        }),
        t.map(|t| KeyValue::new("rpc.method", t.method.name().to_string())),
        template.map(|r| KeyValue::new("http.route", r.to_string())),
        t.map(|t| KeyValue::new("protogate.upstream", t.upstream.clone())),
        Some(KeyValue::new("http.request.method", http_method)),
        Some(KeyValue::new(
            "http.response.status_code",
            i64::from(o.http_status.as_u16()),
        )),
        Some(KeyValue::new("rpc.grpc.status_code", o.code as i64)),
        (o.code != Code::Ok).then(|| KeyValue::new("error.type", code_name(o.code))),
        o.request_id
            .map(|id| KeyValue::new("protogate.request_id", id.to_string())),
        Some(KeyValue::new(
            "protogate.messages_received",
            i64::try_from(o.messages_received).unwrap_or(i64::MAX),
        )),
        Some(KeyValue::new(
            "protogate.messages_sent",
            i64::try_from(o.messages_sent).unwrap_or(i64::MAX),
        )),
    ]
    .into_iter()
    .flatten()
}

/// Whether the span's status is an error. The RPC conventions for SERVER
/// spans: only codes that mean the server failed (a client's NOT_FOUND or
/// INVALID_ARGUMENT is the client's; it is in `error.type` and the codes).
fn is_server_error(o: &Outcome<'_>) -> bool {
    matches!(
        o.code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    ) || o.http_status.is_server_error()
}

/// `http.request.method`: the method when it is a known one, else `_OTHER`
/// (the HTTP conventions; keeps the attribute's values few).
fn http_method(m: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == m.as_str())
        .unwrap_or("_OTHER")
}

/// Reads the trace context from the request's headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes the trace context into the call's metadata, replacing what the
/// client sent under the same keys.
struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes `tracestate` even when empty: send none then.
        let value = (!value.is_empty())
            .then(|| AsciiMetadataValue::try_from(value).ok())
            .flatten();
        match (key, value) {
            ("traceparent", Some(v)) => {
                self.0.insert("traceparent", v);
            }
            ("tracestate", Some(v)) => {
                self.0.insert("tracestate", v);
            }
            ("traceparent", None) => {
                self.0.remove("traceparent");
            }
            ("tracestate", None) => {
                self.0.remove("tracestate");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_is_cleartext_http() {
        for bad in ["127.0.0.1:4317", "https://collector:4317"] {
            let e = Otlp::start(bad, "protogate").expect_err(bad);
            assert!(e.contains("expected http://host:port"), "{e}");
        }
        let otlp = Otlp::start("http://127.0.0.1:4317", "protogate").expect("builds");
        // Nothing was traced: nothing to export, and no collector needed.
        otlp.shutdown().await.expect("shuts down");
    }

    #[test]
    fn known_methods_keep_their_name() {
        assert_eq!(http_method(&Method::GET), "GET");
        assert_eq!(http_method(&Method::PATCH), "PATCH");
        let custom = Method::from_bytes(b"PURGE").expect("a valid method");
        assert_eq!(http_method(&custom), "_OTHER");
    }

    #[test]
    fn injection_replaces_the_client_context() {
        let mut md = MetadataMap::new();
        md.insert(
            "traceparent",
            AsciiMetadataValue::from_static("00-aa-bb-01"),
        );
        md.insert("tracestate", AsciiMetadataValue::from_static("k=v"));
        let mut m = Metadata(&mut md);
        m.set("traceparent", "00-11-22-01".into());
        m.set("tracestate", String::new());
        assert_eq!(
            md.get("traceparent").map(|v| v.to_str().ok()),
            Some(Some("00-11-22-01"))
        );
        assert!(md.get("tracestate").is_none());
        assert_eq!(md.len(), 1);
    }
}
