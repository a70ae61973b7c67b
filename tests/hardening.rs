//! Regression tests for the hardening issue, one per finding: deep nesting
//! (no stack overflow), memory amplification (a decoding budget), header and
//! metadata limits (no shared-connection resets), silent data changes
//! (range and format errors), upstream fault statuses (in rest_upstream.rs),
//! loose input, JSON answers for requests hyper refuses, slow clients, and
//! the mock's answer to a call without a message.
//!
//! The probe service (tests/fixtures/hardening) is served by a real tonic
//! echo server.

mod common;

use std::time::Duration;

use common::{Reply, Running};
use protogate::config::Config;
use protogate::gateway::Gateway;
use protogate::live::Live;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hardening")
}

/// The gateway over the probe service, in front of the echo server (or the
/// mock with `mock: {enabled: true}` in `yaml`).
async fn probe_gateway(yaml: &str) -> (Running, Running) {
    let echo = common::start_echo().await;
    let pool = protogate::descriptors::load(&[fixture()]).unwrap().pool;
    let config = Config::parse(yaml).unwrap();
    let gw = Gateway::build(pool, config, Some(&echo.url())).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) =
        protogate::server::spawn(Live::fixed(gw), "127.0.0.1:0".parse().unwrap(), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    (Running::new(addr, tx), echo)
}

async fn post(gw: &Running, path: &str, body: impl Into<reqwest::Body>) -> Reply {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::from(r).await
}

async fn get(gw: &Running, path: &str) -> Reply {
    Reply::from(reqwest::get(format!("{}{path}", gw.url())).await.unwrap()).await
}

/// A 400 (code 3) whose field violation or message names `needle`.
fn assert_bad(r: &Reply, needle: &str) {
    let j = r.assert_error(400, 3);
    assert!(j.to_string().contains(needle), "{needle} not in {j}");
}

#[tokio::test]
async fn deep_query_keys_are_refused_not_a_stack_overflow() {
    for mock in [false, true] {
        let (gw, _echo) = probe_gateway(if mock { "mock: {enabled: true}" } else { "" }).await;
        for depth in [65, 500, 4000] {
            let key = format!("node.{}v", "child.".repeat(depth));
            let r = get(&gw, &format!("/v1/probe?{key}=1")).await;
            assert_bad(&r, "limits.max_depth");
        }
        // Within the limit, it works.
        let key = format!("node.{}v", "child.".repeat(10));
        let r = get(&gw, &format!("/v1/probe?{key}=deep")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let mut n = &r.json()["node"];
        for _ in 0..10 {
            n = &n["child"];
        }
        assert_eq!(n["v"], "deep");
    }
}

#[tokio::test]
async fn deep_json_is_refused_everywhere_it_can_nest() {
    let (gw, _echo) = probe_gateway("").await;
    let nested = |open: &str, close: &str, leaf: &str, n: usize| {
        format!("{}{leaf}{}", open.repeat(n), close.repeat(n))
    };
    for body in [
        format!(
            r#"{{"node": {}}}"#,
            nested(r#"{"child": "#, "}", "{}", 4000)
        ),
        format!(r#"{{"meta": {}}}"#, nested(r#"{"a": "#, "}", "1", 4000)),
        format!(r#"{{"list": {}}}"#, nested("[", "]", "1", 100_000)),
        format!(r#"{{"value": {}}}"#, nested("[", "]", "1", 70)),
        format!(
            r#"{{"any": {}}}"#,
            nested(
                r#"{"@type": "type.googleapis.com/google.protobuf.Value", "value": "#,
                "}",
                "1",
                200
            )
        ),
    ] {
        let r = post(&gw, "/v1/probe", body).await;
        assert_bad(&r, "limits.max_depth");
    }
    // The field-body route nests the same way.
    let body = nested(r#"{"child": "#, "}", "{}", 1000);
    assert_bad(&post(&gw, "/v1/nodes/x", body).await, "limits.max_depth");
}

#[tokio::test]
async fn bodies_that_would_decode_to_gigabytes_are_refused() {
    let (gw, _echo) = probe_gateway("").await;
    // 3.8 MiB of [1,1,1,…] into a ListValue: every 1 would be a message.
    let ones = format!(r#"{{"list": [{}1]}}"#, "1,".repeat(1_900_000));
    assert!(ones.len() < 4 << 20);
    let j = post(&gw, "/v1/probe", ones).await.assert_error(413, 8);
    assert!(
        j["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_decoded_bytes"),
        "{j}"
    );
    // A Struct with 240k keys.
    let keys: Vec<String> = (0..240_000).map(|i| format!(r#""k{i}": 1"#)).collect();
    let body = format!(r#"{{"meta": {{{}}}}}"#, keys.join(","));
    post(&gw, "/v1/probe", body).await.assert_error(413, 8);
    // 1.3M empty messages.
    let body = format!(r#"{{"nodes": [{}{{}}]}}"#, "{},".repeat(1_300_000));
    post(&gw, "/v1/probe", body).await.assert_error(413, 8);
    // The same shapes at ordinary sizes go through.
    let body = format!(
        r#"{{"list": [{}1], "nums": [{}1]}}"#,
        "1,".repeat(1000),
        "1,".repeat(50_000)
    );
    let r = post(&gw, "/v1/probe", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["nums"].as_array().unwrap().len(), 50_001);
}

#[tokio::test]
async fn out_of_range_integers_are_rejected_not_clamped() {
    let (gw, _echo) = probe_gateway("").await;
    for (body, field) in [
        (r#"{"i64": -9223372036854775809}"#, "i64"),
        (r#"{"i64": 9223372036854775808}"#, "i64"),
        (r#"{"s64": -9223372036854775809}"#, "s64"),
        (r#"{"u64": 18446744073709551616}"#, "u64"),
        (r#"{"f64": 18446744073709551616}"#, "f64"),
        (r#"{"wi64": 9223372036854775808}"#, "wi64"),
        (r#"{"wu64": 18446744073709551616}"#, "wu64"),
        (r#"{"nums": [1, 9223372036854775808]}"#, "nums[1]"),
        (r#"{"counts": {"a": 9223372036854775808}}"#, "counts"),
        (
            r#"{"node": {"v": "x"}, "i64": "9223372036854775808"}"#,
            "i64",
        ),
        (r#"{"u64": "-1"}"#, "u64"),
    ] {
        assert_bad(&post(&gw, "/v1/probe", body).await, field);
    }
    for query in [
        "i64=-9223372036854775809",
        "u64=18446744073709551616",
        "wi64=9223372036854775808",
    ] {
        let r = get(&gw, &format!("/v1/probe?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
    }
    // The limits themselves are fine, as numbers and as strings.
    let body = r#"{"i64": -9223372036854775808, "u64": "18446744073709551615", "wi64": 9223372036854775807, "d": 18446744073709551616}"#;
    let r = post(&gw, "/v1/probe", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["i64"], "-9223372036854775808");
    assert_eq!(r.json()["u64"], "18446744073709551615");
}

#[tokio::test]
async fn timestamps_and_durations_are_parsed_strictly() {
    let (gw, _echo) = probe_gateway("").await;
    for (body, field) in [
        (r#"{"ts": "2024-01-01T00:00:00.1234567891Z"}"#, "ts"),
        (r#"{"ts": "2024-01-01T23:59:60Z"}"#, "ts"),
        (r#"{"ts": "2023-02-29T00:00:00Z"}"#, "ts"),
        (r#"{"dur": "315576000001s"}"#, "dur"),
        (r#"{"dur": "1.0000000001s"}"#, "dur"),
    ] {
        assert_bad(&post(&gw, "/v1/probe", body).await, field);
    }
    for query in [
        "ts=2024-01-01T00:00:60Z",
        "ts=2024-01-01T00:00:00.0000000001Z",
        "dur=1.0000000001s",
    ] {
        assert_bad(
            &get(&gw, &format!("/v1/probe?{query}")).await,
            query.split('=').next().unwrap(),
        );
    }
    let r = post(
        &gw,
        "/v1/probe",
        r#"{"ts": "2024-02-29T23:59:59.999999999Z", "dur": "-1.5s"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ts"], "2024-02-29T23:59:59.999999999Z");
}

#[tokio::test]
async fn loose_input_is_refused() {
    let (gw, _echo) = probe_gateway("").await;
    // A path value with a trailing newline is not the number 1.
    assert_bad(&get(&gw, "/v1/probe/1%0A").await, "i64");
    // Malformed percent-encoding and overlong UTF-8 in the query.
    assert_bad(&get(&gw, "/v1/probe?s=%ZZ").await, "s");
    assert_bad(&get(&gw, "/v1/probe?s=%C0%AF").await, "s");
    assert_bad(&get(&gw, "/v1/probe?s%ZZ=1").await, "percent-encoding");
    // Two members of one oneof.
    assert_bad(&get(&gw, "/v1/probe?a=1&b=2").await, "oneof choice");
    // Header values with obs-text bytes cannot be metadata.
    let r = reqwest::Client::new()
        .get(format!("{}/v1/probe", gw.url()))
        .header(
            "grpc-metadata-x-note",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_bad(&Reply::from(r).await, "grpc-metadata-x-note");
    // A transfer coding the gateway does not decode.
    let raw = raw_http(
        &gw,
        b"POST /v1/probe HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(raw.contains("transfer-encoding"), "{raw}");
    // Native gRPC over GET.
    let r = reqwest::Client::new()
        .get(format!("{}/hardening.v1.ProbeService/Echo", gw.url()))
        .header("content-type", "application/grpc")
        .send()
        .await
        .unwrap();
    let r = Reply::from(r).await;
    r.assert_error(405, 12);
    assert_eq!(r.header("allow"), Some("POST"));
}

/// Sends `request` over a fresh HTTP/1.1 connection and returns everything
/// the gateway answers until it closes (or 5 s pass).
async fn raw_http(gw: &Running, request: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON body of a raw HTTP answer.
fn raw_json(answer: &str) -> serde_json::Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[tokio::test]
async fn requests_hyper_refuses_get_the_json_error_shape() {
    let (gw, _echo) = probe_gateway("limits: {max_header_bytes: 16KiB}").await;
    let long_header = format!(
        "GET /v1/probe HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let long_uri = format!(
        "GET /v1/probe?s={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    for (request, status, code) in [
        (b"GARBAGE\r\n\r\n".to_vec(), 400, 3),
        (
            b"GET /v1/probe HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n".to_vec(),
            400,
            3,
        ),
        (
            b"GET /v1/probe HTTP/1.1\r\nhost: x\r\nx-a\x01b: 1\r\n\r\n".to_vec(),
            400,
            3,
        ),
        (
            b"POST /v1/probe HTTP/1.1\r\nhost: x\r\ncontent-length: banana\r\n\r\n".to_vec(),
            400,
            3,
        ),
        (
            b"POST /v1/probe HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"
                .to_vec(),
            400,
            3,
        ),
        (long_header.into_bytes(), 431, 8),
        (long_uri.into_bytes(), 431, 8),
    ] {
        let answer = raw_http(&gw, &request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{}: {answer}",
            String::from_utf8_lossy(&request[..40.min(request.len())])
        );
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        let j = raw_json(&answer);
        assert_eq!(j["code"], code, "{j}");
        assert!(j["details"].is_array(), "{j}");
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_times_out_with_408() {
    let (gw, _echo) = probe_gateway("limits: {body_read_timeout: 300ms}").await;
    let answer = raw_http(
        &gw,
        b"POST /v1/probe HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"s\":",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(raw_json(&answer)["code"], 4);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let (gw, _echo) = probe_gateway("limits: {header_read_timeout: 300ms}").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /v1/probe HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the connection was held open past the header timeout"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let (gw, _echo) =
        probe_gateway("limits: {idle_timeout: 300ms, header_read_timeout: 60s}").await;
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tcp.write_all(b"GET /v1/probe HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "an idle keep-alive connection was held open");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn connections_beyond_the_maximum_wait_to_be_accepted() {
    let (gw, _echo) = probe_gateway("limits: {max_connections: 1}").await;
    let mut first = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    first
        .write_all(b"GET /v1/probe HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    first.read_exact(&mut buf).await.unwrap();
    // The second connection is not served while the first is open...
    let mut second = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    second
        .write_all(b"GET /v1/probe HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let early =
        tokio::time::timeout(Duration::from_millis(300), second.read_to_end(&mut out)).await;
    assert!(
        early.is_err(),
        "served beyond max_connections: {}",
        String::from_utf8_lossy(&out)
    );
    // ...and is as soon as it closes.
    drop(first);
    let late = tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut out)).await;
    assert!(late.is_ok());
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn oversized_metadata_is_refused_before_it_can_break_the_shared_connection() {
    use common::backend::pb::library::v1::StreamBooksRequest;
    use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
    let env = common::Env::start().await;
    // A stream in flight on the gateway's one upstream connection...
    let mut grpc = LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap();
    let mut stream = grpc
        .stream_books(StreamBooksRequest {
            parent: "shelves/1".into(),
            interval: Some(prost_types::Duration {
                seconds: 0,
                nanos: 300_000_000,
            }),
            repeat: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    // ...while clients send huge headers, over REST and native gRPC: beyond
    // the listener's limit, and within it but beyond the metadata limit.
    for (size, limit) in [
        (100 * 1024, "limits.max_header_bytes"),
        (20 * 1024, "limits.max_metadata_bytes"),
    ] {
        let r = env
            .http
            .get(env.url("/v1/shelves/1"))
            .header("grpc-metadata-x-big", "a".repeat(size))
            .send()
            .await
            .unwrap();
        let j = Reply::from(r).await.assert_error(431, 8);
        assert!(j["message"].as_str().unwrap().contains(limit), "{j}");
    }
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .header("authorization", format!("Bearer {}", "t".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    Reply::from(r).await.assert_error(431, 8);
    let mut req = tonic::Request::new(common::backend::pb::library::v1::GetShelfRequest {
        name: "shelves/1".into(),
    });
    req.metadata_mut()
        .insert("x-big", "a".repeat(12 * 1024).parse().unwrap());
    let err = grpc.get_shelf(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    // The stream in flight is untouched.
    let mut rest = 1;
    while stream.message().await.unwrap().is_some() {
        rest += 1;
    }
    assert_eq!(rest, 3);
    // Metadata within the limit still passes.
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .header("grpc-metadata-x-echo-note", "n".repeat(4 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_mock_refuses_a_unary_call_without_a_message() {
    let (gw, _echo) = probe_gateway("mock: {enabled: true}").await;
    let r = reqwest::Client::new()
        .post(format!("{}/hardening.v1.ProbeService/Echo", gw.url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-status"], "13");
}

#[tokio::test]
async fn a_deep_update_mask_is_refused_by_the_stateful_mock() {
    let (gw, _) = common::start_gateway(
        "mock: {enabled: true, stateful: [library.v1.LibraryService]}",
        None,
    )
    .await;
    let created = post(&gw, "/v1/shelves/1/books", r#"{"title": "t"}"#).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let name = created.json()["name"].as_str().unwrap().to_string();
    let mask = vec!["publisher"; 1000].join(".");
    let r = reqwest::Client::new()
        .patch(format!("{}/v1/{name}?updateMask={mask}", gw.url()))
        .header("content-type", "application/json")
        .body(r#"{"title": "u"}"#)
        .send()
        .await
        .unwrap();
    assert_bad(&Reply::from(r).await, "limits.max_depth");
}
