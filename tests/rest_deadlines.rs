//! Deadlines: the client's `grpc-timeout`, per-method `timeouts:`, an
//! upstream's `timeout:` and `limits.default_timeout`, each expiring as a 504
//! with code 4 (DEADLINE_EXCEEDED), and malformed `grpc-timeout` as a 400.
//!
//! The example backend answers within microseconds, so deadlines that must
//! expire against it are ones that have already passed when the request
//! arrives (`1n`, `1u`). Configured deadlines that must expire are tested
//! against a fake upstream that never answers, and which deadline the gateway
//! picked is read from the `grpc-timeout` it sends upstream.

mod common;

use std::time::Duration;

use axum::http::HeaderMap;
use common::{Env, Reply};
use protogate::protocol::metadata::parse_grpc_timeout;
use tokio::sync::mpsc;

/// A fake h2c upstream that records each request's headers and then either
/// never answers or answers NOT_FOUND (trailers-only).
struct FakeUpstream {
    url: String,
    seen: mpsc::UnboundedReceiver<HeaderMap>,
}

impl FakeUpstream {
    async fn start(answer: bool) -> FakeUpstream {
        let (tx, seen) = mpsc::unbounded_channel();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
            let tx = tx.clone();
            async move {
                // The gateway's health checks are not the calls under test.
                if !uri.path().starts_with("/grpc.health.v1.") {
                    let _ = tx.send(headers);
                    if !answer {
                        std::future::pending::<()>().await;
                    }
                }
                [
                    ("content-type", "application/grpc"),
                    ("grpc-status", "5"),
                    ("grpc-message", "recorded"),
                ]
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeUpstream { url, seen }
    }

    /// The `grpc-timeout` of the next recorded request.
    async fn next_timeout(&mut self) -> Duration {
        let headers = self.seen.recv().await.expect("upstream saw a request");
        let v = headers
            .get("grpc-timeout")
            .unwrap_or_else(|| panic!("no grpc-timeout sent upstream: {headers:?}"));
        parse_grpc_timeout(v.to_str().unwrap())
            .unwrap_or_else(|| panic!("bad grpc-timeout sent upstream: {v:?}"))
    }
}

async fn get_with(env: &Env, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = env.http.get(env.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// The gateway with `yaml` in front of `upstream`, and a client for it.
async fn gateway(yaml: &str, upstream: &str) -> (common::Running, reqwest::Client) {
    let (gw, _) = common::start_gateway(yaml, Some(upstream)).await;
    (gw, reqwest::Client::new())
}

async fn send(
    client: &reqwest::Client,
    gw: &common::Running,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(m, format!("{}{path}", gw.url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if method != "GET" {
        req = req.header("content-type", "application/json").body("{}");
    }
    Reply::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn expired_client_deadline_is_504() {
    let env = Env::start().await;
    // Repeated so that a gateway which races an expired deadline against the
    // upstream's answer cannot pass by luck.
    for timeout in ["1n", "1u"] {
        for attempt in 0..10 {
            let r = get_with(&env, "/v1/shelves/1", &[("grpc-timeout", timeout)]).await;
            assert_eq!(
                r.status,
                504,
                "grpc-timeout {timeout}, attempt {attempt}: {}",
                r.text()
            );
            r.assert_error(504, 4);
        }
    }
}

#[tokio::test]
async fn expired_configured_deadline_is_504() {
    // 1ns deadlines from routes.yaml: per method, and the default.
    for yaml in [
        "timeouts: {library.v1.LibraryService.GetShelf: 0.000000001s}\n",
        "limits: {default_timeout: 0.000000001s}\n",
    ] {
        let env = Env::with_routes(yaml).await;
        for attempt in 0..10 {
            let r = env.get("/v1/shelves/1").await;
            assert_eq!(r.status, 504, "{yaml} attempt {attempt}: {}", r.text());
            r.assert_error(504, 4);
        }
    }
}

#[tokio::test]
async fn invalid_grpc_timeout_is_400() {
    let env = Env::start().await;
    for bad in ["soon", "1x", "S", "-1S", "1.5S", "123456789S", "10 S"] {
        let r = get_with(&env, "/v1/shelves/1", &[("grpc-timeout", bad)]).await;
        let j = r.assert_error(400, 3);
        assert!(j.to_string().contains("grpc-timeout"), "{bad}: {j}");
    }
}

#[tokio::test]
async fn generous_client_deadline_succeeds_and_beats_configuration() {
    let env =
        Env::with_routes("timeouts: {library.v1.LibraryService.GetShelf: 0.000000001s}\n").await;
    for ok in ["10S", "1M", "1H", "99999999m"] {
        let r = get_with(&env, "/v1/shelves/1", &[("grpc-timeout", ok)]).await;
        assert_eq!(r.status, 200, "{ok}: {}", r.text());
        assert_eq!(r.json()["name"], "shelves/1");
    }
    // Other methods keep the default.
    assert_eq!(env.get("/v1/shelves").await.status, 200);
}

#[tokio::test]
async fn configured_method_timeout_expires_as_504() {
    let upstream = FakeUpstream::start(false).await;
    let (gw, client) = gateway(
        "timeouts: {library.v1.LibraryService.GetShelf: 1ms}\n",
        &upstream.url,
    )
    .await;
    let r = send(&client, &gw, "GET", "/v1/shelves/1", &[]).await;
    r.assert_error(504, 4);
}

#[tokio::test]
async fn default_timeout_expires_as_504() {
    let upstream = FakeUpstream::start(false).await;
    let (gw, client) = gateway("limits: {default_timeout: 1ms}\n", &upstream.url).await;
    for (method, path) in [
        ("GET", "/v1/shelves/1"),
        ("GET", "/v1/books"),
        ("POST", "/v1/shelves"),
        ("PATCH", "/v1/shelves/1/books/1"),
    ] {
        let r = send(&client, &gw, method, path, &[]).await;
        assert_eq!(r.status, 504, "{method} {path}: {}", r.text());
        r.assert_error(504, 4);
    }
}

#[tokio::test]
async fn client_deadline_expires_as_504() {
    let upstream = FakeUpstream::start(false).await;
    let (gw, client) = gateway("", &upstream.url).await;
    let r = send(
        &client,
        &gw,
        "GET",
        "/v1/shelves/1",
        &[("grpc-timeout", "20m")],
    )
    .await;
    r.assert_error(504, 4);
}

#[tokio::test]
async fn deadline_sent_upstream_follows_the_most_specific_setting() {
    let mut upstream = FakeUpstream::start(true).await;
    let (gw, client) = gateway(
        "upstreams: {library: {url: 'http://127.0.0.1:9', timeout: 7s}}\n\
         timeouts: {library.v1.LibraryService.GetShelf: 250ms}\n\
         limits: {default_timeout: 1h}\n",
        &upstream.url,
    )
    .await;
    let secs = Duration::from_secs;

    // Per-method timeout.
    send(&client, &gw, "GET", "/v1/shelves/1", &[])
        .await
        .assert_error(404, 5);
    let t = upstream.next_timeout().await;
    assert!(t <= Duration::from_millis(250) && !t.is_zero(), "{t:?}");

    // The upstream's timeout for the other methods.
    send(&client, &gw, "GET", "/v1/shelves", &[])
        .await
        .assert_error(404, 5);
    let t = upstream.next_timeout().await;
    assert!(t <= secs(7) && t > secs(1), "{t:?}");

    // The client's header wins over both.
    send(
        &client,
        &gw,
        "GET",
        "/v1/shelves/1",
        &[("grpc-timeout", "3S")],
    )
    .await
    .assert_error(404, 5);
    let t = upstream.next_timeout().await;
    assert!(t <= secs(3) && t > secs(1), "{t:?}");
}

#[tokio::test]
async fn service_and_wildcard_selectors_and_the_default() {
    let mut upstream = FakeUpstream::start(true).await;
    let secs = Duration::from_secs;
    for (yaml, want) in [
        (
            "timeouts: {'library.v1.LibraryService.*': 20s, '*': 2s}\n",
            secs(20),
        ),
        (
            "timeouts: {'*': 5s}\nlimits: {default_timeout: 1h}\n",
            secs(5),
        ),
        ("limits: {default_timeout: 90s}\n", secs(90)),
    ] {
        let (gw, client) = gateway(yaml, &upstream.url).await;
        send(&client, &gw, "GET", "/v1/books", &[])
            .await
            .assert_error(404, 5);
        let t = upstream.next_timeout().await;
        assert!(t <= want && t > want / 2, "{yaml}: {t:?}");
    }
}
