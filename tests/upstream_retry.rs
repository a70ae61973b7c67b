//! Retries to upstreams (`upstreams.<name>.retry`): a real tonic backend on
//! loopback that fails chosen methods a chosen number of times and counts
//! every attempt that reaches it, the real gateway in front, spoken to over
//! real HTTP (REST and native gRPC). Assertions are on attempt counts, never
//! on timing.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{BufMut, BytesMut};
use common::backend::LibraryBackend;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::library_service_server::LibraryServiceServer;
use common::backend::pb::library::v1::{Book, GetShelfRequest, StreamBooksRequest};
use common::{Reply, Running};
use futures_util::future::BoxFuture;
use http_body::Frame;
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::body::Body;

/// How a method fails.
#[derive(Clone, Copy)]
enum Fault {
    /// A trailers-only status: no response message, no headers before it.
    Status(Code),
    /// Response headers and one message, then the status.
    MessageThen(Code),
}

/// Which methods fail, how many more times, and how many attempts each
/// method saw.
#[derive(Default)]
struct Plan {
    faults: Mutex<HashMap<String, (usize, Fault)>>,
    attempts: Mutex<HashMap<String, usize>>,
}

impl Plan {
    /// `method` fails its next `times` calls with `fault`.
    fn fail(&self, method: &str, times: usize, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .insert(method.to_string(), (times, fault));
    }

    /// Calls of `method` that reached the backend.
    fn attempts(&self, method: &str) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Counts an attempt at `method`; the fault it meets, if any.
    fn attempt(&self, method: &str) -> Option<Fault> {
        *self
            .attempts
            .lock()
            .unwrap()
            .entry(method.to_string())
            .or_default() += 1;
        let mut faults = self.faults.lock().unwrap();
        let (left, fault) = faults.get_mut(method)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(*fault)
    }
}

/// The example library service behind the [`Plan`]'s faults.
#[derive(Clone)]
struct Flaky {
    inner: LibraryServiceServer<LibraryBackend>,
    plan: Arc<Plan>,
}

impl tonic::server::NamedService for Flaky {
    const NAME: &'static str = "library.v1.LibraryService";
}

impl tower::Service<http::Request<Body>> for Flaky {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        match self.plan.attempt(&method) {
            None => {
                let mut inner = self.inner.clone();
                Box::pin(async move { tower::Service::call(&mut inner, req).await })
            }
            Some(Fault::Status(code)) => {
                let reply = tonic::Status::new(code, "flaky backend").into_http::<Body>();
                Box::pin(async move { Ok(reply) })
            }
            Some(Fault::MessageThen(code)) => Box::pin(async move { Ok(message_then(code)) }),
        }
    }
}

/// A response of one Book, then `code`.
fn message_then(code: Code) -> http::Response<Body> {
    let book = Book {
        name: "shelves/1/books/1".into(),
        title: "The first and last".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(book.len() as u32);
    frame.put_slice(&book);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", (code as i32).to_string().parse().unwrap());
    trailers.insert("grpc-message", "flaky backend".parse().unwrap());
    let frames = futures_util::stream::iter([
        Ok::<_, Infallible>(Frame::data(frame.freeze())),
        Ok(Frame::trailers(trailers)),
    ]);
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(Body::new(http_body_util::StreamBody::new(frames)))
        .unwrap()
}

/// Serves the flaky library on `listener`.
fn serve(listener: TcpListener, plan: Arc<Plan>) -> Running {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let svc = Flaky {
        inner: LibraryServiceServer::new(LibraryBackend::with_sample_data()),
        plan,
    };
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = rx.await;
            })
            .await;
    });
    Running::new(addr, tx)
}

/// The flaky backend and the gateway in front of it, whose routes.yaml is
/// `yaml` with `{url}` replaced by the backend's URL.
struct Env {
    plan: Arc<Plan>,
    gateway: Running,
    http: reqwest::Client,
    _backend: Running,
}

impl Env {
    async fn start(yaml: &str) -> Env {
        let plan = Arc::new(Plan::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = serve(listener, plan.clone());
        let yaml = yaml.replace("{url}", &backend.url());
        let (gateway, _) = common::start_gateway(&yaml, None).await;
        Env {
            plan,
            gateway,
            http: reqwest::Client::new(),
            _backend: backend,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        let url = format!("{}{path}", self.gateway.url());
        Reply::from(self.http.get(url).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.gateway.url());
        let request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        Reply::from(request.send().await.unwrap()).await
    }

    async fn grpc(&self) -> LibraryServiceClient<tonic::transport::Channel> {
        LibraryServiceClient::connect(self.gateway.url())
            .await
            .unwrap()
    }
}

/// One upstream named `name` with `retry` (flow YAML) and quick backoffs
/// unless `retry` sets its own.
fn routes(name: &str, retry: &str) -> String {
    format!(
        "upstreams:\n  {name}:\n    url: \"{{url}}\"\n    retry: {{initial_backoff: 1ms, max_backoff: 5ms, {retry}}}\n"
    )
}

const UNAVAILABLE: Fault = Fault::Status(Code::Unavailable);

#[tokio::test]
async fn idempotent_method_is_retried_until_success() {
    let env = Env::start(&routes("lib", "max_attempts: 3")).await;
    // GetShelf is NO_SIDE_EFFECTS in the descriptors.
    env.plan.fail("GetShelf", 2, UNAVAILABLE);
    let r = env.get("/v1/shelves/1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "shelves/1");
    assert_eq!(env.plan.attempts("GetShelf"), 3);

    // Native gRPC through the gateway: the same.
    env.plan.fail("GetShelf", 2, UNAVAILABLE);
    let request = GetShelfRequest {
        name: "shelves/1".into(),
    };
    let shelf = env.grpc().await.get_shelf(request).await.unwrap();
    assert_eq!(shelf.into_inner().name, "shelves/1");
    assert_eq!(env.plan.attempts("GetShelf"), 6);

    // One failure more than the attempts: the upstream's status passes through.
    env.plan.fail("GetShelf", 3, UNAVAILABLE);
    let r = env.get("/v1/shelves/1").await;
    let body = r.assert_error(503, Code::Unavailable as i64);
    assert_eq!(body["message"], "flaky backend");
    assert_eq!(env.plan.attempts("GetShelf"), 9);
}

#[tokio::test]
async fn listed_method_is_retried_and_unlisted_is_not() {
    let listed = "methods: [library.v1.LibraryService.GetShelfStats]";
    let env = Env::start(&routes("lib", listed)).await;
    env.plan.fail("GetShelfStats", 2, UNAVAILABLE);
    let r = env.get("/v1/shelves/1/stats").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(env.plan.attempts("GetShelfStats"), 3);

    let env = Env::start(&routes("lib", "max_attempts: 3")).await;
    env.plan.fail("GetShelfStats", 1, UNAVAILABLE);
    let r = env.get("/v1/shelves/1/stats").await;
    r.assert_error(503, Code::Unavailable as i64);
    assert_eq!(env.plan.attempts("GetShelfStats"), 1);
}

#[tokio::test]
async fn non_idempotent_method_is_not_retried() {
    let env = Env::start(&routes("lib", "max_attempts: 5")).await;
    env.plan.fail("CreateShelf", 1, UNAVAILABLE);
    let r = env.post("/v1/shelves", r#"{"theme": "Retries"}"#).await;
    let body = r.assert_error(503, Code::Unavailable as i64);
    assert_eq!(body["message"], "flaky backend");
    assert_eq!(env.plan.attempts("CreateShelf"), 1);
}

#[tokio::test]
async fn only_configured_codes_are_retried() {
    let env = Env::start(&routes("lib", "max_attempts: 3")).await;
    env.plan.fail("GetShelf", 1, Fault::Status(Code::Internal));
    let r = env.get("/v1/shelves/1").await;
    r.assert_error(500, Code::Internal as i64);
    assert_eq!(env.plan.attempts("GetShelf"), 1);

    let env = Env::start(&routes("lib", "codes: [ABORTED, UNAVAILABLE]")).await;
    env.plan.fail("GetShelf", 1, Fault::Status(Code::Aborted));
    let r = env.get("/v1/shelves/1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(env.plan.attempts("GetShelf"), 2);
}

#[tokio::test]
async fn backoff_past_the_deadline_starts_no_attempt() {
    // A backoff of up to an hour against a 300 ms deadline: the chance of a
    // pause short enough for a second attempt is below 1 in 10,000.
    let yaml = "upstreams:\n  lib:\n    url: \"{url}\"\n    retry: {initial_backoff: 1h, max_backoff: 1h}\n\
                timeouts:\n  library.v1.LibraryService.GetShelf: 300ms\n";
    let env = Env::start(yaml).await;
    env.plan.fail("GetShelf", usize::MAX, UNAVAILABLE);
    let r = env.get("/v1/shelves/1").await;
    r.assert_error(504, Code::DeadlineExceeded as i64);
    assert_eq!(env.plan.attempts("GetShelf"), 1);

    // Native gRPC: the same (the client sets no deadline of its own, which
    // would end the call on its side at the same moment).
    let request = GetShelfRequest {
        name: "shelves/1".into(),
    };
    let status = env.grpc().await.get_shelf(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(env.plan.attempts("GetShelf"), 2);
}

#[tokio::test]
async fn budget_bounds_the_retries_of_a_failing_upstream() {
    let budget = "max_attempts: 3, budget: {ratio: 0.2, min_per_second: 0}";
    let env = Env::start(&routes("lib", budget)).await;
    env.plan.fail("GetShelf", usize::MAX, UNAVAILABLE);
    let requests = 50;
    for _ in 0..requests {
        let r = env.get("/v1/shelves/1").await;
        r.assert_error(503, Code::Unavailable as i64);
    }
    let attempts = env.plan.attempts("GetShelf");
    let retries = attempts - requests;
    println!("budget 20%, min 0/s: {attempts} attempts for {requests} requests");
    assert!(retries > 0, "the budget allows some retries");
    // Without the budget: 3 attempts each, 150.
    assert!(
        attempts <= requests + requests / 5 + 1,
        "{attempts} attempts for {requests} requests"
    );
}

#[tokio::test]
async fn server_stream_that_sent_a_message_is_not_retried() {
    let listed = "methods: [library.v1.LibraryService.StreamBooks]";
    let env = Env::start(&routes("lib", listed)).await;
    env.plan
        .fail("StreamBooks", 1, Fault::MessageThen(Code::Unavailable));
    let r = env.get("/v1/shelves/1/books:stream").await;
    assert_eq!(r.status, 200, "the first message was sent: {}", r.text());
    let text = r.text();
    assert!(text.contains("The first and last"), "{text}");
    assert!(
        text.contains("flaky backend"),
        "the error ends the stream: {text}"
    );
    assert_eq!(env.plan.attempts("StreamBooks"), 1);

    // Native gRPC: one message, then the upstream's status.
    env.plan
        .fail("StreamBooks", 1, Fault::MessageThen(Code::Unavailable));
    let request = StreamBooksRequest {
        parent: "shelves/1".into(),
        ..Default::default()
    };
    let mut stream = env
        .grpc()
        .await
        .stream_books(request)
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.title, "The first and last");
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(env.plan.attempts("StreamBooks"), 2);

    // Failed before its headers: nothing was sent, so it is retried.
    env.plan.fail("StreamBooks", 1, UNAVAILABLE);
    let r = env.get("/v1/shelves/1/books:stream").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("The Left Hand of Darkness"),
        "{}",
        r.text()
    );
    assert_eq!(env.plan.attempts("StreamBooks"), 4);
}

#[tokio::test]
async fn connection_failures_count_as_unavailable_and_metrics_show_retries() {
    protogate::observe::metrics::install().unwrap();
    // The first two connections are accepted and dropped at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let plan = Arc::new(Plan::default());
    let backend = {
        let dropped = dropped.clone();
        let plan = plan.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            for _ in 0..2 {
                drop(listener.accept().await.unwrap());
                dropped.fetch_add(1, Ordering::SeqCst);
            }
            let _ = ready_tx.send(serve(listener, plan));
        });
        ready_rx
    };
    // No health probes: they would take the dropped connections.
    let yaml = routes("metered", "max_attempts: 5").replace("{url}", &format!("http://{addr}"))
        + "health: {interval: 0s}\n";
    let (gateway, _) = common::start_gateway(&yaml, None).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", gateway.url())).send();
    let r = Reply::from(get("/v1/shelves/1").await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    assert_eq!(
        plan.attempts("GetShelf"),
        1,
        "only the last attempt reached gRPC"
    );
    let _backend = backend.await.unwrap();

    // A retried status, and a retry the attempts do not allow.
    plan.fail("GetShelf", 9, UNAVAILABLE);
    let r = Reply::from(get("/v1/shelves/1").await.unwrap()).await;
    r.assert_error(503, Code::Unavailable as i64);
    assert_eq!(plan.attempts("GetShelf"), 6);

    let text = protogate::observe::metrics::render().unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(series.split('{').next().unwrap()))
            .filter(|l| {
                series
                    .split(['{', ',', '}'])
                    .skip(1)
                    .all(|label| l.contains(label))
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let method = "method=\"library.v1.LibraryService/GetShelf\"";
    let retried = |reason: &str| {
        value(&format!(
            "protogate_upstream_retries_total{{upstream=\"metered\",{method},reason=\"{reason}\"}}"
        ))
    };
    assert!(retried("unreachable") >= 1.0, "{text}");
    assert_eq!(retried("unavailable"), 4.0, "{text}");
    let skipped = value(&format!(
        "protogate_upstream_retries_skipped_total{{upstream=\"metered\",{method},reason=\"attempts\"}}"
    ));
    assert_eq!(skipped, 1.0, "{text}");
    assert!(text.contains("# HELP protogate_upstream_retries_total"));
    assert!(text.contains("# HELP protogate_upstream_retries_skipped_total"));
}

#[tokio::test]
async fn retry_settings_are_checked_at_load() {
    let build = |retry: &str| {
        let yaml = format!("upstreams:\n  lib:\n    url: http://127.0.0.1:1\n    retry: {retry}\n");
        let config = protogate::config::Config::parse(&yaml)?;
        let resources = protogate::gateway::Resources::default();
        protogate::gateway::Gateway::build_with(common::pool(), config, None, &resources)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let cases = [
        ("{max_attempts: 0}", "upstreams.lib.retry.max_attempts"),
        ("{codes: [NOPE]}", "not a gRPC error code"),
        ("{budget: {ratio: 2}}", "upstreams.lib.retry.budget.ratio"),
        (
            "{methods: [library.v1.LibraryService.ImportBooks]}",
            "upstreams.lib.retry.methods: library.v1.LibraryService.ImportBooks is client-streaming",
        ),
        (
            "{methods: [library.v1.Nope.*]}",
            "upstreams.lib.retry.methods: selector library.v1.Nope.* names no method",
        ),
    ];
    for (retry, expected) in cases {
        let error = build(retry).unwrap_err();
        assert!(error.contains(expected), "{retry}: {error}");
    }
    build("{methods: ['library.v1.LibraryService.*']}").unwrap();
}
