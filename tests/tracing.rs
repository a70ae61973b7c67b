//! Tracing end to end: a real OTLP receiver (a tonic
//! `opentelemetry.proto.collector.trace.v1.TraceService` on loopback), a
//! real backend that records the `traceparent` it receives, and the real
//! gateway over HTTP with the tracing hook exporting to that receiver. The
//! gateway's span continues the client's trace and is the parent the
//! backend sees; without an endpoint the client's context passes unchanged.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::backend::LibraryBackend;
use common::backend::pb::library::v1::GetBookRequest;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::library_service_server::LibraryServiceServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use protogate::gateway::Resources;
use protogate::observe::trace::Otlp;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

const GET_BOOK: &str = "library.v1.LibraryService/GetBook";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str, span: &str, flags: &str) -> String {
    format!("00-{trace}-{span}-{flags}")
}

/// A span as the receiver got it, with its resource's `service.name`.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    fn attr(&self, key: &str) -> Option<&Value> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        }
    }

    fn status(&self) -> (StatusCode, String) {
        let s = self.span.status.clone().unwrap_or_default();
        (s.code(), s.message)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OTLP receiver: keeps every span exported to it.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                kept.push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves the receiver on a loopback port; returns its `http://` URL.
    async fn start() -> (Collector, common::Running) {
        let collector = Collector::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = TraceServiceServer::new(collector.clone());
        tokio::spawn(
            tonic::transport::Server::builder().serve_with_incoming_shutdown(
                svc,
                TcpListenerStream::new(listener),
                async {
                    let _ = rx.await;
                },
            ),
        );
        (collector, common::Running::new(addr, tx))
    }

    fn spans(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) for a span matching `want`, flushing the exporter
    /// while it waits.
    async fn wait_for(
        &self,
        otlp: &Arc<Otlp>,
        what: &str,
        want: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // The flush blocks until the collector answered: off the runtime.
            let o = otlp.clone();
            tokio::task::spawn_blocking(move || o.flush())
                .await
                .unwrap()
                .unwrap();
            if let Some(r) = self.spans().into_iter().find(|r| want(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no span {what} within 15 s; received: {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `traceparent` and `tracestate` one call carried, if any.
type Context = (Option<String>, Option<String>);

/// What the backend received as trace context, one entry per call.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Context>>>);

impl Seen {
    fn all(&self) -> Vec<Context> {
        self.0.lock().unwrap().clone()
    }

    fn only(&self) -> Context {
        let all = self.all();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    }
}

/// The example backend, recording the `traceparent` and `tracestate` of
/// every call; `x-fail-code: N` makes it answer status N.
async fn start_recording_backend() -> (common::Running, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let interceptor = move |req: tonic::Request<()>| {
        let md = req.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        record
            .0
            .lock()
            .unwrap()
            .push((get("traceparent"), get("tracestate")));
        match md.get("x-fail-code").and_then(|v| v.to_str().ok()) {
            Some(code) => Err(tonic::Status::new(
                tonic::Code::from_i32(code.parse().unwrap()),
                "injected",
            )),
            None => Ok(req),
        }
    };
    let svc =
        LibraryServiceServer::with_interceptor(LibraryBackend::with_sample_data(), interceptor);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Routed by path: only library calls are recorded (not health probes).
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            }),
    );
    (common::Running::new(addr, tx), seen)
}

/// A traced setup: receiver, recording backend, gateway with the hook.
struct Traced {
    collector: Collector,
    otlp: Arc<Otlp>,
    seen: Seen,
    gateway: common::Running,
    _backend: common::Running,
    _receiver: common::Running,
}

impl Traced {
    async fn start() -> Traced {
        let (collector, receiver) = Collector::start().await;
        let otlp = Arc::new(Otlp::start(&receiver.url(), "protogate-test").unwrap());
        let (backend, seen) = start_recording_backend().await;
        let resources = Resources::with_hooks(vec![Arc::new(otlp.hook())]);
        let (gateway, _) = common::start_gateway_with(
            &common::bundled_routes_yaml(),
            Some(&backend.url()),
            resources,
        )
        .await;
        Traced {
            collector,
            otlp,
            seen,
            gateway,
            _backend: backend,
            _receiver: receiver,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::StatusCode {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.gateway.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap().status()
    }

    async fn span(&self, what: &str, want: impl Fn(&Received) -> bool) -> Received {
        self.collector.wait_for(&self.otlp, what, want).await
    }
}

/// `(trace id, parent span id, flags)` of a `traceparent`.
fn parts(traceparent: &str) -> (String, String, String) {
    let p: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(p.len(), 4, "{traceparent}");
    assert_eq!(p[0], "00", "{traceparent}");
    (p[1].into(), p[2].into(), p[3].into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_call_continues_the_client_trace_and_the_backend_continues_the_gateway_span() {
    let t = Traced::start().await;
    let status = t
        .get(
            "/v1/shelves/1/books/1",
            &[
                ("traceparent", &traceparent(CLIENT_TRACE, CLIENT_SPAN, "01")),
                ("tracestate", "vendor=opaque"),
            ],
        )
        .await;
    assert_eq!(status, 200);

    // The backend is a child of the gateway's span, in the client's trace.
    let (tp, ts) = t.seen.only();
    let (trace, parent, flags) = parts(&tp.expect("the backend received a traceparent"));
    assert_eq!(trace, CLIENT_TRACE);
    assert_ne!(parent, CLIENT_SPAN, "the gateway's own span is the parent");
    assert_eq!(flags, "01");
    assert_eq!(
        ts.as_deref(),
        Some("vendor=opaque"),
        "tracestate carried on"
    );

    let s = t
        .span("in the client's trace", |r| r.trace_id() == CLIENT_TRACE)
        .await;
    assert_eq!(s.span_id(), parent, "the backend's parent is this span");
    assert_eq!(s.parent_span_id(), CLIENT_SPAN);
    assert_eq!(s.span.kind(), SpanKind::Server);
    assert_eq!(s.span.name, GET_BOOK);
    assert_eq!(s.service, "protogate-test");
    assert_eq!(s.str_attr("rpc.system"), Some("grpc"));
    assert_eq!(s.str_attr("rpc.service"), Some("library.v1.LibraryService"));
    assert_eq!(s.str_attr("rpc.method"), Some("GetBook"));
    assert_eq!(
        s.str_attr("http.route"),
        Some("/v1/{name=shelves/*/books/*}")
    );
    assert_eq!(s.str_attr("http.request.method"), Some("GET"));
    assert_eq!(s.int_attr("http.response.status_code"), Some(200));
    assert_eq!(s.int_attr("rpc.grpc.status_code"), Some(0));
    assert_eq!(s.str_attr("protogate.protocol"), Some("rest"));
    assert_eq!(s.str_attr("error.type"), None);
    assert_eq!(s.status().0, StatusCode::Unset);
    assert_eq!(s.span.trace_state, "vendor=opaque");
    assert!(s.span.end_time_unix_nano >= s.span.start_time_unix_nano);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_grpc_call_is_traced() {
    let t = Traced::start().await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let mut client = LibraryServiceClient::connect(t.gateway.url())
        .await
        .unwrap();
    let mut req = tonic::Request::new(GetBookRequest {
        name: "shelves/1/books/1".into(),
    });
    req.metadata_mut().insert(
        "traceparent",
        traceparent(trace, "b7ad6b7169203331", "01")
            .parse()
            .unwrap(),
    );
    client.get_book(req).await.unwrap();

    let (tp, _) = t.seen.only();
    let (got_trace, parent, _) = parts(&tp.expect("a traceparent"));
    assert_eq!(got_trace, trace);
    assert_ne!(parent, "b7ad6b7169203331");

    let s = t.span("of the gRPC call", |r| r.trace_id() == trace).await;
    assert_eq!(s.span_id(), parent);
    assert_eq!(s.parent_span_id(), "b7ad6b7169203331");
    assert_eq!(s.span.kind(), SpanKind::Server);
    assert_eq!(s.span.name, GET_BOOK);
    assert_eq!(s.str_attr("protogate.protocol"), Some("grpc"));
    assert_eq!(s.str_attr("http.request.method"), Some("POST"));
    assert_eq!(s.str_attr("http.route"), None, "no REST route was taken");
    assert_eq!(s.int_attr("rpc.grpc.status_code"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_trace_context_starts_a_trace() {
    let t = Traced::start().await;
    assert_eq!(t.get("/v1/shelves/1/books/1", &[]).await, 200);
    let (tp, ts) = t.seen.only();
    let (trace, parent, flags) = parts(&tp.expect("the gateway sent a traceparent"));
    assert_eq!(flags, "01", "new traces are sampled");
    assert_eq!(ts, None, "no empty tracestate is sent");
    let s = t.span("of the new trace", |r| r.trace_id() == trace).await;
    assert_eq!(s.span_id(), parent);
    assert!(s.span.parent_span_id.is_empty(), "a root span");
    assert_eq!(s.span.name, GET_BOOK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_starts_a_new_trace_and_is_not_forwarded() {
    let t = Traced::start().await;
    let bad = "00-not-a-trace-01";
    assert_eq!(
        t.get("/v1/shelves/1/books/1", &[("traceparent", bad)])
            .await,
        200
    );
    let (tp, _) = t.seen.only();
    let tp = tp.expect("a traceparent");
    assert_ne!(tp, bad);
    let (trace, _, _) = parts(&tp);
    let s = t.span("of the new trace", |r| r.trace_id() == trace).await;
    assert!(s.span.parent_span_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_request_gets_a_span_and_reaches_no_backend() {
    let t = Traced::start().await;
    let trace = "11111111111111111111111111111111";
    let status = t
        .get(
            "/v1/nowhere",
            &[("traceparent", &traceparent(trace, CLIENT_SPAN, "01"))],
        )
        .await;
    assert_eq!(status, 404);
    let s = t.span("of the 404", |r| r.trace_id() == trace).await;
    assert_eq!(s.parent_span_id(), CLIENT_SPAN);
    assert_eq!(s.span.kind(), SpanKind::Server);
    assert_eq!(s.span.name, "GET", "named for the HTTP method: no route");
    assert_eq!(s.int_attr("http.response.status_code"), Some(404));
    assert_eq!(s.int_attr("rpc.grpc.status_code"), Some(5));
    assert_eq!(s.str_attr("error.type"), Some("NOT_FOUND"));
    assert_eq!(s.str_attr("rpc.service"), None);
    assert_eq!(s.str_attr("http.route"), None);
    // A client's mistake is not the server's failure (RPC conventions).
    assert_eq!(s.status().0, StatusCode::Unset);
    assert!(t.seen.all().is_empty(), "nothing reached the backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_set_the_codes_and_server_failures_the_error_status() {
    let t = Traced::start().await;
    let unavailable = "22222222222222222222222222222222";
    let not_found = "33333333333333333333333333333333";
    for (trace, code, status) in [(unavailable, "14", 503), (not_found, "5", 404)] {
        let tp = traceparent(trace, CLIENT_SPAN, "01");
        let headers = [
            ("traceparent", tp.as_str()),
            ("grpc-metadata-x-fail-code", code),
        ];
        assert_eq!(t.get("/v1/shelves/1/books/1", &headers).await, status);
    }

    let s = t.span("UNAVAILABLE", |r| r.trace_id() == unavailable).await;
    assert_eq!(s.span.name, GET_BOOK);
    assert_eq!(s.int_attr("rpc.grpc.status_code"), Some(14));
    assert_eq!(s.int_attr("http.response.status_code"), Some(503));
    assert_eq!(s.str_attr("error.type"), Some("UNAVAILABLE"));
    let (code, message) = s.status();
    assert_eq!(code, StatusCode::Error);
    assert!(message.contains("injected"), "{message}");

    let s = t.span("NOT_FOUND", |r| r.trace_id() == not_found).await;
    assert_eq!(s.int_attr("rpc.grpc.status_code"), Some(5));
    assert_eq!(s.str_attr("error.type"), Some("NOT_FOUND"));
    assert_eq!(s.status().0, StatusCode::Unset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_client_trace_is_propagated_but_not_exported() {
    let t = Traced::start().await;
    let unsampled = "44444444444444444444444444444444";
    let sampled = "55555555555555555555555555555555";
    let tp = traceparent(unsampled, CLIENT_SPAN, "00");
    assert_eq!(
        t.get("/v1/shelves/1/books/1", &[("traceparent", &tp)])
            .await,
        200
    );
    let (got, _) = t.seen.only();
    let (trace, parent, flags) = parts(&got.expect("a traceparent"));
    assert_eq!(trace, unsampled);
    assert_eq!(flags, "00", "the client's decision is kept");
    assert_ne!(parent, CLIENT_SPAN);
    // A sampled request after it: once its span is in, the first one's
    // would be too, had it been exported (one queue, in order).
    let tp = traceparent(sampled, CLIENT_SPAN, "01");
    assert_eq!(
        t.get("/v1/shelves/1/books/1", &[("traceparent", &tp)])
            .await,
        200
    );
    t.span("of the sampled trace", |r| r.trace_id() == sampled)
        .await;
    assert!(
        !t.collector
            .spans()
            .iter()
            .any(|r| r.trace_id() == unsampled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_the_client_context_reaches_the_backend_unchanged() {
    let (backend, seen) = start_recording_backend().await;
    // What the binary installs without --otlp-endpoint: no tracing hook.
    let (gateway, _) =
        common::start_gateway(&common::bundled_routes_yaml(), Some(&backend.url())).await;
    let tp = traceparent(CLIENT_TRACE, CLIENT_SPAN, "01");
    let status = reqwest::Client::new()
        .get(format!("{}/v1/shelves/1/books/1", gateway.url()))
        .header("traceparent", &tp)
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(seen.only(), (Some(tp), Some("vendor=opaque".to_string())));
}

/// The binary: `OTEL_EXPORTER_OTLP_ENDPOINT` turns tracing on and the spans
/// still queued are exported when it shuts down (the batch delay is made
/// longer than the test, so only the shutdown flush can deliver them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_over_otlp_and_flushes_on_shutdown() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let (collector, receiver) = Collector::start().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_protogate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PROTOGATE_") || k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args([
            "serve",
            "--mock",
            "--listen",
            "127.0.0.1:0",
            "--watch",
            "false",
        ])
        .args(["--otlp-service-name", "edge"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url())
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("PROTOGATE_DRAIN_DELAY", "0s")
        .env("RUST_LOG", "info")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (addr, log) = tokio::task::spawn_blocking(move || {
        let addr = common::process::listening_address(&mut lines);
        // The rest of the log, until the process exits.
        let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        (addr, rest)
    })
    .await
    .unwrap();

    let trace = "66666666666666666666666666666666";
    let status = reqwest::Client::new()
        .get(format!("http://{addr}/v1/shelves/1/books/1"))
        .header("traceparent", traceparent(trace, CLIENT_SPAN, "01"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // SIGTERM, then wait (bounded) for the exit.
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let exited = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(exited.is_some(), "protogate did not stop within 30 s");

    // The export finished before the process exited.
    let spans = collector.spans();
    let s = spans
        .iter()
        .find(|r| r.trace_id() == trace)
        .unwrap_or_else(|| panic!("the span was flushed on shutdown: {spans:#?}"));
    assert_eq!(s.service, "edge");
    assert_eq!(s.parent_span_id(), CLIENT_SPAN);
    assert_eq!(s.span.name, GET_BOOK);
    assert_eq!(s.str_attr("protogate.upstream"), Some("mock"));

    // The request's access-log line carries its trace id.
    let log = tokio::task::spawn_blocking(move || log.join().unwrap())
        .await
        .unwrap();
    assert!(
        log.iter().any(
            |l| l.contains("protogate::access") && l.contains(&format!("trace_id=\"{trace}\""))
        ),
        "no access line with trace_id={trace}: {log:#?}"
    );
}
