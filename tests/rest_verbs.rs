//! Custom verbs and HEAD, end to end through the real gateway and the
//! example backend (issue 11, items 7 and 8).
//!
//! A URL whose last segment ends in a verb some template declares reaches
//! only the routes of that verb: a wrong method is a 405, never another
//! method on a resource named `…:verb`. A colon followed by anything else is
//! part of the id. HEAD is GET without the body; on a server-streaming route
//! the stream is never started.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::backend::pb::library::v1::GetBookRequest;
use common::backend::pb::library::v1::library_service_server::LibraryService;
use common::raw_http::{Http, LIMIT, Raw, exchange};
use common::{Env, bundled_routes_yaml, start_gateway};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Whether the backend still holds `name` (asked directly, not through the
/// gateway).
async fn book_exists(env: &Env, name: &str) -> bool {
    let req = tonic::Request::new(GetBookRequest { name: name.into() });
    env.store.get_book(req).await.is_ok()
}

#[tokio::test]
async fn a_wrong_method_on_a_move_url_is_405_and_reaches_nothing() {
    let env = Env::start().await;
    for method in ["DELETE", "GET", "PATCH", "PUT"] {
        let r = env
            .send_json(method, "/v1/shelves/1/books/2:move", "{}")
            .await;
        let j = r.assert_error(405, 12);
        assert_eq!(r.header("allow"), Some("POST"), "{method}: {j}");
    }
    assert!(book_exists(&env, "shelves/1/books/2").await);
}

#[tokio::test]
async fn post_on_a_move_url_still_moves_the_book() {
    let env = Env::start().await;
    let r = env
        .send_json(
            "POST",
            "/v1/shelves/1/books/2:move",
            r#"{"otherShelfName": "shelves/3"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["title"], "Beloved");
    assert!(!book_exists(&env, "shelves/1/books/2").await);
}

#[tokio::test]
async fn a_colon_that_starts_no_declared_verb_is_part_of_the_id() {
    let env = Env::start().await;
    // The backend's own error names what the gateway bound: the whole id.
    for (method, path, name) in [
        ("GET", "/v1/shelves/1/books/2:x", "shelves/1/books/2:x"),
        ("DELETE", "/v1/shelves/1/books/2:x", "shelves/1/books/2:x"),
        (
            "GET",
            "/v1/shelves/1/books/a:move:b",
            "shelves/1/books/a:move:b",
        ),
        // An encoded colon is data: never a verb.
        (
            "GET",
            "/v1/shelves/1/books/2%3Amove",
            "shelves/1/books/2%3Amove",
        ),
    ] {
        let r = env.send_json(method, path, "").await;
        let j = r.assert_error(400, 3);
        let message = j["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("`{name}`")),
            "{method} {path}: {j}"
        );
    }
    assert!(book_exists(&env, "shelves/1/books/2").await);
}

#[tokio::test]
async fn a_verb_after_a_double_wildcard_variable() {
    let rule = "http:\n  rules:\n    - selector: library.v1.LibraryService.GetShelf\n      get: /v1/{name=**}:peek\n";
    let env = Env::with_routes(rule).await;
    let r = env.get("/v1/shelves/2:peek").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["theme"], "Popular science");
    // DeleteShelf's `/v1/{name=shelves/*}` never sees `2:peek`.
    let r = env.send_json("DELETE", "/v1/shelves/2:peek", "").await;
    r.assert_error(405, 12);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(env.get("/v1/shelves/2:peek").await.status, 200);
}

/// HTTP/1.1 on one connection: `HEAD path`, then a GET that must be the
/// very next response, proving the HEAD answer carried no body. Returns
/// the HEAD answer's status line and headers, lowercased.
async fn head_then_get(addr: SocketAddr, path: &str) -> (String, Vec<(String, String)>) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let requests = format!(
        "HEAD {path} HTTP/1.1\r\nhost: x\r\n\r\n\
         GET /v1/shelves/1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    );
    tcp.write_all(requests.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut all))
        .await
        .expect("both answers in time")
        .unwrap();
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a HEAD answer");
    assert!(
        rest.starts_with("HTTP/1.1 200"),
        "bytes after HEAD: {rest:?}"
    );
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn get_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn raw(env: &Env, http: Http, method: Method, path: &str, headers: &[(&str, &str)]) -> Raw {
    exchange(env.gateway.addr, http, method, path, headers, Bytes::new()).await
}

#[tokio::test]
async fn head_on_a_get_route_is_get_without_the_body() {
    let env = Env::start().await;
    let get = raw(&env, Http::V1, Method::GET, "/v1/shelves/2", &[]).await;
    let length = get.body.len().to_string();
    assert_eq!(get.header("content-length"), Some(length.as_str()));

    let (status, headers) = head_then_get(env.gateway.addr, "/v1/shelves/2").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        get_header(&headers, "content-length"),
        Some(length.as_str())
    );
    assert_eq!(
        get_header(&headers, "content-type"),
        Some("application/json")
    );

    let head = raw(&env, Http::V2, Method::HEAD, "/v1/shelves/2", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(length.as_str()));
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert!(head.body.is_empty(), "{:?}", head.body);
}

#[tokio::test]
async fn head_is_compressed_as_get_would_be() {
    let env = Env::with_routes("compression: {min_size: 0}\n").await;
    let gzip = [("accept-encoding", "gzip")];
    let get = raw(&env, Http::V2, Method::GET, "/v1/shelves/2", &gzip).await;
    let head = raw(&env, Http::V2, Method::HEAD, "/v1/shelves/2", &gzip).await;
    assert_eq!(get.header("content-encoding"), Some("gzip"));
    for name in ["content-encoding", "content-length", "content-type", "vary"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn head_on_a_stream_sends_its_headers_and_never_starts_it() {
    let env = Env::start().await;
    let path = "/v1/shelves/1/books:stream";
    let (status, headers) = head_then_get(env.gateway.addr, path).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        get_header(&headers, "content-type"),
        Some("application/x-ndjson")
    );
    // GET streams have no length: neither may HEAD claim one (`0`).
    assert_eq!(get_header(&headers, "content-length"), None);

    let sse = [("accept", "text/event-stream")];
    let head = raw(&env, Http::V2, Method::HEAD, path, &sse).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert!(head.body.is_empty());
    assert!(env.store.stream_endings().is_empty());
}

#[tokio::test]
async fn head_on_a_stream_needs_no_backend() {
    // An upstream that refuses connections: GET cannot stream, HEAD never asks.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (gateway, _gw) = start_gateway(&bundled_routes_yaml(), Some(&dead)).await;
    let path = "/v1/shelves/1/books:stream";
    let head = exchange(
        gateway.addr,
        Http::V2,
        Method::HEAD,
        path,
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/x-ndjson"));
    let get = exchange(gateway.addr, Http::V2, Method::GET, path, &[], Bytes::new()).await;
    assert_eq!(get.status, 503, "{:?}", get.body);
}

#[tokio::test]
async fn head_on_a_stream_is_refused_as_get_would_be() {
    let yaml = "headers: {forward: [x-tenant]}\nlimits: {max_metadata_bytes: 200}\n";
    let env = Env::with_routes(yaml).await;
    let big = "t".repeat(300);
    let tenant = [("x-tenant", big.as_str())];
    let path = "/v1/shelves/1/books:stream";
    let get = raw(&env, Http::V2, Method::GET, path, &tenant).await;
    let head = raw(&env, Http::V2, Method::HEAD, path, &tenant).await;
    assert_eq!(get.status, 431, "{:?}", get.body);
    assert_eq!(head.status, get.status);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn head_where_no_get_route_exists_is_refused_as_before() {
    let env = Env::start().await;
    for (path, allow) in [
        ("/v1/shelves/1/books/2:move", "POST"),
        ("/v1/shelves/1/books:import", "POST"),
    ] {
        let head = raw(&env, Http::V2, Method::HEAD, path, &[]).await;
        assert_eq!(head.status, 405, "{path}");
        assert_eq!(head.header("allow"), Some(allow), "{path}");
        assert_eq!(head.header("content-type"), Some("application/json"));
    }
    let head = raw(&env, Http::V2, Method::HEAD, "/v2/nothing", &[]).await;
    assert_eq!(head.status, 404);
    assert!(book_exists(&env, "shelves/1/books/2").await);
}

#[tokio::test]
async fn allow_lists_head_wherever_get_is_allowed() {
    let env = Env::start().await;
    let r = env.send_json("DELETE", "/v1/shelves", "").await;
    r.assert_error(405, 12);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    let r = env.send_json("PUT", "/v1/shelves/1/books:stream", "").await;
    r.assert_error(405, 12);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}
