//! Upstream faults: an upstream that is down answers 503 (UNAVAILABLE) and the
//! gateway recovers once the backend comes up on that address; an upstream
//! that does not speak gRPC, or ends a call without a valid `grpc-status`,
//! answers 502 — never 200.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use common::{Reply, Running};
use tokio::net::TcpListener;

/// How many times the polling loops below try before giving up.
const POLL_ATTEMPTS: usize = 600;
const POLL_PAUSE: Duration = Duration::from_millis(50);

async fn get(client: &reqwest::Client, gw: &Running, path: &str) -> Reply {
    Reply::from(
        client
            .get(format!("{}{path}", gw.url()))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Asserts a gateway error in the JSON shape with this HTTP status and a
/// non-OK code; returns the body.
fn assert_failure(r: &Reply, status: u16) -> serde_json::Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert!(j["code"].as_i64().is_some_and(|c| c != 0), "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    assert!(j["details"].is_array(), "{j}");
    j
}

/// Serves an axum app over HTTP/1.1 and h2c (prior knowledge) on loopback.
async fn serve_fake(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The gateway (bundled descriptors, no routes.yaml) in front of a fake
/// upstream answering every request with `reply()`.
async fn gateway_before<F>(reply: F) -> (Running, reqwest::Client)
where
    F: Fn() -> Response + Clone + Send + Sync + 'static,
{
    let app = axum::Router::new().fallback(move || {
        let reply = reply.clone();
        async move { reply() }
    });
    let addr = serve_fake(app).await;
    let (gw, _) = common::start_gateway("", Some(&format!("http://{addr}"))).await;
    (gw, reqwest::Client::new())
}

/// A gRPC response head: 200, `application/grpc`.
fn grpc_head() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/grpc"));
    h
}

/// One length-prefixed gRPC message frame holding an encoded Shelf.
fn shelf_frame() -> Vec<u8> {
    use prost::Message as _;
    let shelf = common::backend::pb::library::v1::Shelf {
        name: "shelves/1".into(),
        theme: "fake".into(),
        ..Default::default()
    };
    let payload = shelf.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// A complete gRPC response: `body` (message frames), then trailers.
fn grpc_reply(body: Vec<u8>, trailers: &[(&'static str, &'static str)]) -> Response {
    use http_body::Frame;
    let mut t = HeaderMap::new();
    for (k, v) in trailers {
        t.insert(*k, HeaderValue::from_static(v));
    }
    let frames = vec![
        Ok::<_, std::convert::Infallible>(Frame::data(bytes::Bytes::from(body))),
        Ok(Frame::trailers(t)),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    (grpc_head(), axum::body::Body::new(body)).into_response()
}

#[tokio::test]
async fn fake_upstream_answer_is_transcoded() {
    // The control for the fakes below: a well-formed answer is a 200.
    let (gw, client) =
        gateway_before(|| grpc_reply(shelf_frame(), &[("grpc-status", "0"), ("x-trailer", "t")]))
            .await;
    let r = get(&client, &gw, "/v1/shelves/1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({"name": "shelves/1", "theme": "fake"})
    );
}

#[tokio::test]
async fn undecodable_message_is_502() {
    let (gw, client) = gateway_before(|| {
        grpc_reply(
            vec![0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
            &[("grpc-status", "0")],
        )
    })
    .await;
    assert_failure(&get(&client, &gw, "/v1/shelves/1").await, 502);
}

#[tokio::test]
async fn two_messages_for_a_unary_call_is_502() {
    let (gw, client) = gateway_before(|| {
        let mut two = shelf_frame();
        two.extend(shelf_frame());
        grpc_reply(two, &[("grpc-status", "0")])
    })
    .await;
    assert_failure(&get(&client, &gw, "/v1/shelves/1").await, 502);
}

#[tokio::test]
async fn ok_status_without_a_message_is_502() {
    let (gw, client) = gateway_before(|| grpc_reply(Vec::new(), &[("grpc-status", "0")])).await;
    assert_failure(&get(&client, &gw, "/v1/shelves/1").await, 502);
}

#[tokio::test]
async fn upstream_down_is_503_then_recovers_when_it_comes_up() {
    // Reserve a port, point the gateway at it, then free it.
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    let (gw, _) = common::start_gateway("", Some(&format!("http://{addr}"))).await;
    drop(reserved);
    let client = reqwest::Client::new();

    for path in ["/v1/shelves/1", "/v1/books"] {
        let r = get(&client, &gw, path).await;
        r.assert_error(503, 14);
    }

    // Bring the backend up on that very address.
    let listener = TcpListener::bind(addr).await.unwrap();
    let mut backend = common::serve_backend(
        listener,
        common::backend::LibraryBackend::with_sample_data(),
    )
    .await;
    let mut recovered = None;
    for _ in 0..POLL_ATTEMPTS {
        let r = get(&client, &gw, "/v1/shelves/1").await;
        if r.status == 200 {
            recovered = Some(r);
            break;
        }
        // Until then, only "unavailable" is acceptable.
        r.assert_error(503, 14);
        tokio::time::sleep(POLL_PAUSE).await;
    }
    let r = recovered.expect("the gateway never recovered");
    assert_eq!(r.json()["name"], "shelves/1");
    assert_eq!(
        r.header("grpc-metadata-x-served-by"),
        Some("library-server")
    );

    // Down again: back to 503.
    backend.stop();
    let mut down = false;
    for _ in 0..POLL_ATTEMPTS {
        let r = get(&client, &gw, "/v1/shelves/1").await;
        if r.status == 503 {
            r.assert_error(503, 14);
            down = true;
            break;
        }
        assert_eq!(r.status, 200, "while stopping: {}", r.text());
        tokio::time::sleep(POLL_PAUSE).await;
    }
    assert!(down, "the gateway never noticed the upstream went away");
}

#[tokio::test]
async fn upstream_that_resets_connections_is_503() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let (gw, _) = common::start_gateway("", Some(&format!("http://{addr}"))).await;
    let r = get(&reqwest::Client::new(), &gw, "/v1/shelves/1").await;
    r.assert_error(503, 14);
}

#[tokio::test]
async fn upstream_answering_html_404_is_502() {
    let (gw, client) =
        gateway_before(|| (StatusCode::NOT_FOUND, Html("<h1>Not Found</h1>")).into_response())
            .await;
    for path in ["/v1/shelves/1", "/v1/books"] {
        let j = assert_failure(&get(&client, &gw, path).await, 502);
        assert!(!j.to_string().contains("<h1>"), "{j}");
    }
}

#[tokio::test]
async fn upstream_answering_html_200_is_502() {
    let (gw, client) = gateway_before(|| Html("<p>hello</p>").into_response()).await;
    assert_failure(&get(&client, &gw, "/v1/shelves/1").await, 502);
}

#[tokio::test]
async fn grpc_response_without_grpc_status_is_502() {
    // Headers only, no body, no trailers.
    let (gw, client) = gateway_before(|| grpc_head().into_response()).await;
    assert_failure(&get(&client, &gw, "/v1/shelves/1").await, 502);
}

#[tokio::test]
async fn grpc_message_without_grpc_status_is_not_a_success() {
    // A complete message, then the stream ends without trailers.
    let (gw, client) = gateway_before(|| (grpc_head(), shelf_frame()).into_response()).await;
    let r = get(&client, &gw, "/v1/shelves/1").await;
    assert_failure(&r, 502);
}

#[tokio::test]
async fn invalid_grpc_status_is_not_a_success() {
    let (gw, client) = gateway_before(|| {
        let mut h = grpc_head();
        h.insert("grpc-status", HeaderValue::from_static("banana"));
        h.into_response()
    })
    .await;
    let r = get(&client, &gw, "/v1/shelves/1").await;
    assert!(
        r.status == 502 || r.status == 503,
        "status {}: {}",
        r.status,
        r.text()
    );
    assert_failure(&r, r.status);
}

#[tokio::test]
async fn an_http1_only_upstream_is_502() {
    // What an HTTP/1.1 server answers to the HTTP/2 connection preface.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\nconnection: close\r\n\r\nBad Request")
                    .await;
                // A lingering close, as real servers do: drain, then drop.
                let _ = socket.shutdown().await;
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                })
                .await;
            });
        }
    });
    let (gw, _) = common::start_gateway("", Some(&format!("http://{addr}"))).await;
    let j = assert_failure(
        &get(&reqwest::Client::new(), &gw, "/v1/shelves/1").await,
        502,
    );
    assert!(j["message"].as_str().unwrap().contains("HTTP/2"), "{j}");
}

#[tokio::test]
async fn an_upstream_message_over_max_response_bytes_is_502() {
    let app = axum::Router::new()
        .fallback(|| async { grpc_reply(shelf_frame(), &[("grpc-status", "0")]) });
    let addr = serve_fake(app).await;
    let (gw, _) = common::start_gateway(
        "limits: {max_response_bytes: 8}",
        Some(&format!("http://{addr}")),
    )
    .await;
    let j = assert_failure(
        &get(&reqwest::Client::new(), &gw, "/v1/shelves/1").await,
        502,
    );
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("max_response_bytes"),
        "{j}"
    );
}

#[tokio::test]
async fn a_badly_encoded_grpc_message_keeps_its_status_and_shows_raw() {
    let (gw, client) = gateway_before(|| {
        grpc_reply(
            vec![],
            &[("grpc-status", "5"), ("grpc-message", "100%ZZ gone %FF")],
        )
    })
    .await;
    let r = get(&client, &gw, "/v1/shelves/1").await;
    let j = r.assert_error(404, 5);
    assert_eq!(j["message"], "100%ZZ gone %FF", "{j}");
}

#[tokio::test]
async fn status_details_that_are_not_base64_do_not_break_the_answer() {
    let (gw, client) = gateway_before(|| {
        let mut h = grpc_head();
        h.insert("grpc-status", HeaderValue::from_static("7"));
        h.insert("grpc-message", HeaderValue::from_static("no"));
        h.insert(
            "grpc-status-details-bin",
            HeaderValue::from_static("!!!not base64!!!"),
        );
        h.into_response()
    })
    .await;
    for _ in 0..3 {
        let r = get(&client, &gw, "/v1/shelves/1").await;
        r.assert_error(403, 7);
    }
}
