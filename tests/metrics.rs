//! Prometheus metrics after real traffic: a real backend, the gateway with
//! the metrics hook, requests in several protocols (a stream, errors, a
//! 404, a deadline), a reload, then the scrape of the admin listener's
//! `/metrics`, parsed and checked series by series.
//!
//! The recorder is global to the process, so this file holds one test.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use protogate::descriptors::DescriptorSource;
use protogate::gateway::{Resources, Settings};
use protogate::observe::metrics::{Metrics, install};

const GET_BOOK: &str = "library.v1.LibraryService/GetBook";
const STREAM: &str = "library.v1.LibraryService/StreamBooks";
const BOOK_ROUTE: &str = "GET /v1/{name=shelves/*/books/*}";

/// A scrape, as `name{labels}` → value (labels in the order written).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut series = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            series.insert(key.to_string(), value);
        }
        Scrape(series)
    }

    /// The value of the series named `name` whose labels include all of
    /// `labels` (summed over the series that match).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k, ""));
                n == name
                    && labels
                        .iter()
                        .all(|(l, v)| rest.contains(&format!("{l}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0.keys().any(|k| k.split('{').next() == Some(name))
    }
}

async fn scrape(admin: &str) -> Scrape {
    let r = reqwest::get(format!("{admin}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    Scrape::parse(&r.text().await.unwrap())
}

fn settings(routes: &Path) -> Settings {
    Settings {
        descriptors: vec![DescriptorSource::Path(common::descriptors_dir())],
        routes: vec![routes.to_path_buf()],
        watch: Some(false),
        ..Settings::default()
    }
}

/// Anonymous by default; GetShelf needs a token, DeleteShelf a scope too.
const AUTH: &str = "auth:
  default: anonymous
  providers:
    test: {issuer: test, algorithms: [HS256], hmac_secret_env: METRICS_TEST_HMAC}
  rules:
    - {selector: library.v1.LibraryService.GetShelf}
    - {selector: library.v1.LibraryService.DeleteShelf, scopes: [admin]}
";
const HMAC_SECRET: &str = "a-metrics-test-secret-of-32-bytes-or-more";

fn token(exp_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({"iss": "test", "sub": "u", "exp": now + exp_in});
    let key = jsonwebtoken::EncodingKey::from_secret(HMAC_SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

/// One refusal per reason: no token, an expired one, a missing scope.
async fn refused_traffic(url: &str) {
    let http = reqwest::Client::new();
    let shelf = format!("{url}/v1/shelves/1");
    let r = http.get(&shelf).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&shelf)
        .bearer_auth(token(-600))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&shelf)
        .bearer_auth(token(600))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .delete(&shelf)
        .bearer_auth(token(600))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn traffic(url: &str) {
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{url}{path}")).send();
    assert_eq!(get("/v1/shelves/1/books/1").await.unwrap().status(), 200);
    assert_eq!(get("/v1/shelves/1/books/999").await.unwrap().status(), 404);
    assert_eq!(get("/v1/no/such/route").await.unwrap().status(), 404);
    let stream = get("/v1/shelves/1/books:stream").await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.text().await.unwrap().lines().count(), 3);
    let connect = http
        .post(format!("{url}/{GET_BOOK}"))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .body(r#"{"name":"shelves/1/books/2"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(connect.status(), 200);
    // A stream whose deadline passes before its second book.
    let slow = http
        .get(format!("{url}/v1/shelves/1/books:stream?interval=2s"))
        .header("grpc-timeout", "300m")
        .send()
        .await
        .unwrap();
    let body = slow.text().await.unwrap();
    assert!(
        body.contains("DEADLINE_EXCEEDED") || body.contains("\"code\":4"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_real_traffic() {
    install().unwrap();
    let (backend, _store) = common::start_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    // SAFETY: this file's one test sets it before any gateway reads it.
    unsafe { std::env::set_var("METRICS_TEST_HMAC", HMAC_SECRET) };
    let yaml = format!(
        "upstreams: {{library: {{url: '{}'}}}}\n{AUTH}",
        backend.url()
    );
    std::fs::write(&routes, yaml).unwrap();
    let hooks: Vec<Arc<dyn protogate::pipeline::Hook>> = vec![Arc::new(Metrics::default())];
    let gw = common::start_live(settings(&routes), Resources::with_hooks(hooks)).await;

    traffic(&gw.url).await;
    refused_traffic(&gw.url).await;
    let reload = reqwest::Client::new()
        .post(format!("{}/_protogate/reload", gw.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);

    // Readiness waits for the upstream's first health check.
    let ready = reqwest::get(format!("{}/readyz", gw.admin)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let m = scrape(&gw.admin).await;
    let requests = |labels: &[(&str, &str)]| m.sum("protogate_requests_total", labels);
    let ok_book = [
        ("protocol", "rest"),
        ("method", GET_BOOK),
        ("route", BOOK_ROUTE),
    ];
    assert_eq!(
        requests(&[
            ok_book[0],
            ok_book[1],
            ok_book[2],
            ("code", "OK"),
            ("status", "200")
        ]),
        1.0
    );
    assert_eq!(
        requests(&[ok_book[1], ("code", "NOT_FOUND"), ("status", "404")]),
        1.0
    );
    assert_eq!(
        requests(&[
            ("method", "unknown"),
            ("route", "none"),
            ("code", "NOT_FOUND"),
            ("status", "404")
        ]),
        1.0,
        "the 404 without a route"
    );
    assert_eq!(
        requests(&[
            ("protocol", "connect"),
            ("method", GET_BOOK),
            ("code", "OK")
        ]),
        1.0
    );

    // Unary latency: a histogram with its buckets; streams are timed apart.
    let unary = [("protocol", "rest"), ("method", GET_BOOK), ("code", "OK")];
    assert_eq!(
        m.sum("protogate_request_duration_seconds_count", &unary),
        1.0
    );
    assert_eq!(
        m.sum(
            "protogate_request_duration_seconds_bucket",
            &[unary[1], unary[2], ("le", "+Inf")]
        ),
        2.0,
        "REST and Connect GetBook"
    );
    assert_eq!(
        m.sum(
            "protogate_request_duration_seconds_count",
            &[("method", STREAM)]
        ),
        0.0
    );

    // Streams: both ended, three books sent by the first, one by the second.
    let stream = [("protocol", "rest"), ("method", STREAM)];
    assert_eq!(m.sum("protogate_streams_active", &stream), 0.0);
    assert_eq!(
        m.sum("protogate_stream_duration_seconds_count", &stream),
        2.0
    );
    let sent = m.sum(
        "protogate_stream_messages_total",
        &[stream[1], ("direction", "sent")],
    );
    assert_eq!(sent, 4.0);
    let received = m.sum(
        "protogate_stream_messages_total",
        &[stream[1], ("direction", "received")],
    );
    assert_eq!(received, 2.0);

    // Deadlines are counted apart from failures.
    assert_eq!(m.sum("protogate_deadline_exceeded_total", &stream), 1.0);
    assert_eq!(
        m.sum("protogate_requests_in_flight", &[("protocol", "rest")]),
        0.0
    );

    // The upstream by its configured name: every dispatched call.
    let upstream = m.sum(
        "protogate_upstream_request_duration_seconds_count",
        &[("upstream", "library")],
    );
    assert_eq!(
        upstream, 6.0,
        "two GetBook over REST, one over Connect, two streams, one GetShelf with a token"
    );

    assert_eq!(
        m.sum("protogate_config_reloads_total", &[("result", "success")]),
        1.0
    );
    assert_eq!(
        m.sum(
            "protogate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(m.has("protogate_requests_in_flight"));
    assert_eq!(
        m.sum("protogate_upstream_healthy", &[("url", &backend.url())]),
        1.0
    );

    // Auth refusals by reason; they never reach the upstream.
    let refusals = |reason: &str| {
        m.sum(
            "protogate_auth_rejections_total",
            &[("protocol", "rest"), ("reason", reason)],
        )
    };
    assert_eq!(refusals("missing"), 1.0);
    assert_eq!(refusals("expired"), 1.0);
    assert_eq!(refusals("insufficient_scope"), 1.0);
    assert_eq!(
        requests(&[
            ("method", "library.v1.LibraryService/GetShelf"),
            ("code", "UNAUTHENTICATED"),
            ("status", "401")
        ]),
        2.0
    );

    // Sizes of what reached the backend: REST GetBook twice (found, not
    // found), its requests 19 and 21 bytes of protobuf.
    let sizes = [("protocol", "rest"), ("method", GET_BOOK)];
    assert_eq!(m.sum("protogate_request_size_bytes_count", &sizes), 2.0);
    assert_eq!(m.sum("protogate_request_size_bytes_sum", &sizes), 40.0);
    assert!(m.sum("protogate_response_size_bytes_sum", &sizes) > 100.0);
    assert_eq!(
        m.sum(
            "protogate_response_size_bytes_bucket",
            &[sizes[0], sizes[1], ("le", "64")]
        ),
        1.0,
        "the 404 sent no message"
    );
}
