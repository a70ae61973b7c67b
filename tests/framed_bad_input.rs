//! Bad input to the framed protocols: every malformed gRPC, gRPC-Web and
//! Connect request gets that protocol's own error (a gRPC status, a Connect
//! error JSON with its HTTP status, or a Connect end-stream error) — never a
//! panic, a hang or an HTML 500. Every request is bounded in time.

mod common;

use common::raw_http::{Http, Raw, exchange, gzip};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use bytes::Bytes;
use common::Running;
use common::backend::pb::library::v1::GetBookRequest;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use prost::Message;
use protogate::protocol::envelope;
use serde_json::Value;
use tonic::Code;

/// The message size limit the gateways here are configured with.
const MAX_BODY: usize = 256;
const GET_BOOK: &str = "/library.v1.LibraryService/GetBook";
const STREAM_BOOKS: &str = "/library.v1.LibraryService/StreamBooks";

// ---------------------------------------------------------------------------
// Raw HTTP over loopback.
// ---------------------------------------------------------------------------

/// The example backend behind a gateway whose message limit is [`MAX_BODY`].
struct Setup {
    gateway: Running,
    _backend: Running,
}

async fn setup() -> Setup {
    let (backend, _) = common::start_backend().await;
    let yaml = format!("limits: {{max_body_bytes: {MAX_BODY}}}\n");
    let (gateway, _) = common::start_gateway(&yaml, Some(&backend.url())).await;
    Setup {
        gateway,
        _backend: backend,
    }
}

fn get_book_request() -> Vec<u8> {
    GetBookRequest {
        name: "shelves/1/books/1".into(),
    }
    .encode_to_vec()
}

// ---------------------------------------------------------------------------
// gRPC and gRPC-Web: a status, in trailers, a trailer frame or the headers.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framed {
    Grpc,
    WebBinary,
    WebText,
}

const FRAMED: [Framed; 3] = [Framed::Grpc, Framed::WebBinary, Framed::WebText];

/// A gRPC status as received.
#[derive(Debug)]
struct Status {
    code: Code,
    message: String,
    /// Where it came from (headers, trailers or the gRPC-Web trailer frame).
    from: HeaderMap,
    /// The response headers.
    headers: HeaderMap,
}

/// Sends `body` (already framed; base64-encoded here for gRPC-Web text)
/// to GetBook as `proto`, with `extra` headers.
async fn framed_call(gw: &Running, proto: Framed, extra: &[(&str, &str)], body: Bytes) -> Status {
    let (http, mut headers, body) = match proto {
        Framed::Grpc => (
            Http::V2,
            vec![("content-type", "application/grpc"), ("te", "trailers")],
            body,
        ),
        Framed::WebBinary => (
            Http::V1,
            vec![("content-type", "application/grpc-web+proto")],
            body,
        ),
        Framed::WebText => (
            Http::V1,
            vec![("content-type", "application/grpc-web-text")],
            Bytes::from(STANDARD.encode(&body)),
        ),
    };
    headers.extend_from_slice(extra);
    let raw = exchange(gw.addr, http, Method::POST, GET_BOOK, &headers, body).await;
    status_of(proto, raw)
}

fn status_of(proto: Framed, raw: Raw) -> Status {
    assert_eq!(
        raw.status, 200,
        "{proto:?}: the protocol's own error: {raw:?}"
    );
    let ct = raw.header("content-type").unwrap_or_default();
    let want = match proto {
        Framed::Grpc => "application/grpc",
        Framed::WebBinary => "application/grpc-web",
        Framed::WebText => "application/grpc-web-text",
    };
    assert!(
        ct.starts_with(want),
        "{proto:?}: content-type {ct}: {raw:?}"
    );
    let from = match proto {
        Framed::Grpc if raw.trailers.contains_key("grpc-status") => raw.trailers.clone(),
        Framed::Grpc => raw.headers.clone(),
        Framed::WebBinary => web_trailers(&raw.body).unwrap_or_else(|| raw.headers.clone()),
        Framed::WebText => {
            let body = decode_text(&raw.body);
            web_trailers(&body).unwrap_or_else(|| raw.headers.clone())
        }
    };
    let get = |k: &str| {
        from.get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let code: i32 = get("grpc-status")
        .parse()
        .unwrap_or_else(|_| panic!("{proto:?}: no grpc-status: {raw:?}"));
    let message = percent_encoding::percent_decode_str(&get("grpc-message"))
        .decode_utf8_lossy()
        .into_owned();
    Status {
        code: Code::from_i32(code),
        message,
        from,
        headers: raw.headers,
    }
}

/// The gRPC-Web trailer frame of `body`, if it has one.
fn web_trailers(body: &[u8]) -> Option<HeaderMap> {
    let frames = envelope::decode_all(body, usize::MAX).expect("whole gRPC-Web frames");
    let last = frames.last().filter(|f| f.flags & 0x80 != 0)?;
    let mut out = HeaderMap::new();
    for line in std::str::from_utf8(&last.payload).unwrap().split("\r\n") {
        if let Some((k, v)) = line.split_once(':') {
            out.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
    }
    Some(out)
}

fn decode_text(body: &[u8]) -> Vec<u8> {
    assert_eq!(body.len() % 4, 0, "base64 body");
    body.chunks(4)
        .flat_map(|group| STANDARD.decode(group).expect("base64 group"))
        .collect()
}

/// Asserts `code` with a message containing `needle` for every framed
/// protocol given `body` and `extra` headers.
async fn assert_framed(extra: &[(&str, &str)], body: Bytes, code: Code, needle: &str) {
    let s = setup().await;
    for proto in FRAMED {
        let status = framed_call(&s.gateway, proto, extra, body.clone()).await;
        assert_eq!(status.code, code, "{proto:?}: {status:?}");
        assert!(
            status.message.contains(needle),
            "{proto:?}: message {:?} lacks {needle:?}",
            status.message
        );
    }
}

#[tokio::test]
async fn framed_truncated_frame_is_internal() {
    let mut body = envelope::encode(0, &get_book_request()).to_vec();
    body[1..5].copy_from_slice(&100u32.to_be_bytes());
    assert_framed(&[], body.into(), Code::Internal, "ends inside a message").await;
}

#[tokio::test]
async fn framed_frame_over_the_size_limit_is_resource_exhausted() {
    let body = envelope::encode(0, &[0x0a; MAX_BODY + 1]);
    assert_framed(&[], body, Code::ResourceExhausted, "exceeds the limit").await;
}

#[tokio::test]
async fn framed_compressed_flag_without_grpc_encoding_is_internal() {
    let body = envelope::encode(0x01, &gzip(&get_book_request()));
    let needle = "compressed message without grpc-encoding";
    assert_framed(&[], body, Code::Internal, needle).await;
}

#[tokio::test]
async fn framed_unknown_flag_bits_are_internal() {
    let body = envelope::encode(0x04, &get_book_request());
    assert_framed(&[], body, Code::Internal, "unknown frame flags 0x04").await;
}

#[tokio::test]
async fn framed_gzip_flag_with_garbage_is_internal() {
    let body = envelope::encode(0x01, b"this is not gzip at all");
    let gz = [("grpc-encoding", "gzip")];
    assert_framed(&gz, body, Code::Internal, "does not inflate").await;
}

#[tokio::test]
async fn framed_gzip_bomb_is_resource_exhausted() {
    // 64 KiB of zeros deflate to about 100 bytes: under the limit as sent,
    // far over it inflated.
    let bomb = gzip(&vec![0u8; 64 << 10]);
    assert!(
        bomb.len() + 5 <= MAX_BODY,
        "the bomb itself fits: {}",
        bomb.len()
    );
    let body = envelope::encode(0x01, &bomb);
    let gz = [("grpc-encoding", "gzip")];
    assert_framed(&gz, body, Code::ResourceExhausted, "exceeds the limit").await;
}

#[tokio::test]
async fn framed_unsupported_grpc_encoding_is_unimplemented_with_accept_encoding() {
    let s = setup().await;
    let body = envelope::encode(0x01, b"snappy bytes");
    for proto in FRAMED {
        let status = framed_call(
            &s.gateway,
            proto,
            &[("grpc-encoding", "snappy")],
            body.clone(),
        );
        let status = status.await;
        assert_eq!(status.code, Code::Unimplemented, "{proto:?}: {status:?}");
        assert!(status.message.contains("snappy"), "{status:?}");
        let accepted = status
            .headers
            .get("grpc-accept-encoding")
            .or_else(|| status.from.get("grpc-accept-encoding"))
            .unwrap_or_else(|| panic!("{proto:?}: no grpc-accept-encoding: {status:?}"));
        assert!(accepted.to_str().unwrap().contains("gzip"), "{accepted:?}");
    }
}

#[tokio::test]
async fn grpc_web_text_invalid_base64_is_a_grpc_web_error() {
    let s = setup().await;
    let raw = exchange(
        s.gateway.addr,
        Http::V1,
        Method::POST,
        GET_BOOK,
        &[("content-type", "application/grpc-web-text")],
        Bytes::from_static(b"!!!!not*base64$$"),
    )
    .await;
    let status = status_of(Framed::WebText, raw);
    assert_eq!(status.code, Code::Internal, "{status:?}");
    let needle = "malformed request message";
    assert!(status.message.contains(needle), "{status:?}");
}

#[tokio::test]
async fn grpc_web_text_truncated_frame_is_internal() {
    let s = setup().await;
    let mut body = envelope::encode(0, &get_book_request()).to_vec();
    body.truncate(body.len() - 3);
    let status = framed_call(&s.gateway, Framed::WebText, &[], body.into()).await;
    assert_eq!(status.code, Code::Internal, "{status:?}");
}

// ---------------------------------------------------------------------------
// Connect: unary errors are JSON with the code's HTTP status; streams answer
// 200 with the error in the end-stream message.
// ---------------------------------------------------------------------------

/// A Connect unary POST to `path`.
async fn connect_post(gw: &Running, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let mut all = vec![("connect-protocol-version", "1")];
    all.extend_from_slice(headers);
    let body = Bytes::copy_from_slice(body);
    exchange(gw.addr, Http::V1, Method::POST, path, &all, body).await
}

async fn connect_json(gw: &Running, headers: &[(&str, &str)], body: &str) -> Raw {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    connect_post(gw, GET_BOOK, &all, body.as_bytes()).await
}

/// Asserts a Connect unary error: `http`, JSON, `code`; returns the body.
fn connect_error(raw: &Raw, http: u16, code: &str) -> Value {
    assert_eq!(raw.status, http, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/json"));
    let j = raw.json();
    assert_eq!(j["code"], code, "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    j
}

/// The field named by the error's google.rpc.BadRequest detail.
fn violated_field(j: &Value) -> String {
    let detail = &j["details"][0];
    assert_eq!(detail["type"], "google.rpc.BadRequest", "{j}");
    let value = detail["value"].as_str().unwrap();
    assert!(
        STANDARD_NO_PAD.decode(value).is_ok(),
        "unpadded base64: {j}"
    );
    detail["debug"]["fieldViolations"][0]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field violation: {j}"))
        .to_string()
}

/// A Connect stream to StreamBooks; returns the end-stream message (after
/// checking the response is a 200 Connect stream).
async fn connect_stream(gw: &Running, path: &str, headers: &[(&str, &str)], body: Bytes) -> Value {
    let mut all = vec![("content-type", "application/connect+json")];
    all.extend_from_slice(headers);
    let raw = exchange(gw.addr, Http::V1, Method::POST, path, &all, body).await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/connect+json"));
    let frames = envelope::decode_all(&raw.body, usize::MAX).expect("whole envelopes");
    let last = frames.last().expect("an end-stream message");
    assert_eq!(last.flags, 0x02, "{frames:?}");
    serde_json::from_slice(&last.payload).expect("end-stream JSON")
}

#[tokio::test]
async fn connect_malformed_json_is_400_invalid_argument_naming_the_field() {
    let s = setup().await;
    let raw = connect_json(&s.gateway, &[], r#"{"name": 5}"#).await;
    let j = connect_error(&raw, 400, "invalid_argument");
    assert_eq!(violated_field(&j), "name");

    let raw = connect_json(&s.gateway, &[], r#"{"name": "shelves/1/books/1""#).await;
    connect_error(&raw, 400, "invalid_argument");
}

#[tokio::test]
async fn connect_unknown_field_is_400_invalid_argument_naming_it() {
    let s = setup().await;
    let raw = connect_json(&s.gateway, &[], r#"{"nmae": "shelves/1/books/1"}"#).await;
    let j = connect_error(&raw, 400, "invalid_argument");
    assert!(j["message"].as_str().unwrap().contains("nmae"), "{j}");
}

#[tokio::test]
async fn connect_protocol_version_2_is_400_invalid_argument() {
    let s = setup().await;
    let raw = exchange(
        s.gateway.addr,
        Http::V1,
        Method::POST,
        GET_BOOK,
        &[
            ("content-type", "application/json"),
            ("connect-protocol-version", "2"),
        ],
        Bytes::from_static(br#"{"name": "shelves/1/books/1"}"#),
    )
    .await;
    let j = connect_error(&raw, 400, "invalid_argument");
    assert!(j["message"].as_str().unwrap().contains("version"), "{j}");
}

#[tokio::test]
async fn connect_bad_timeout_is_invalid_argument_unary_and_streaming() {
    let s = setup().await;
    let bad = [("connect-timeout-ms", "abc")];
    let raw = connect_json(&s.gateway, &bad, r#"{"name": "shelves/1/books/1"}"#).await;
    let j = connect_error(&raw, 400, "invalid_argument");
    assert!(j["message"].as_str().unwrap().contains("timeout"), "{j}");

    let body = envelope::encode(0, br#"{"parent": "shelves/1"}"#);
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &bad, body).await;
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
}

#[tokio::test]
async fn connect_streaming_content_type_on_a_unary_method_is_415() {
    let s = setup().await;
    let body = envelope::encode(0, br#"{"name": "shelves/1/books/1"}"#);
    let ct = [("content-type", "application/connect+json")];
    let raw = connect_post(&s.gateway, GET_BOOK, &ct, &body).await;
    connect_error(&raw, 415, "invalid_argument");
}

#[tokio::test]
async fn connect_unary_content_type_on_a_streaming_method_is_415() {
    let s = setup().await;
    let ct = [("content-type", "application/json")];
    let raw = connect_post(&s.gateway, STREAM_BOOKS, &ct, br#"{"parent": "shelves/1"}"#).await;
    connect_error(&raw, 415, "invalid_argument");
}

/// The HTTP status the Connect protocol's table gives a code.
fn connect_http_status(code: &str) -> u16 {
    match code {
        "canceled" => 499,
        "invalid_argument" | "failed_precondition" | "out_of_range" => 400,
        "deadline_exceeded" => 504,
        "not_found" => 404,
        "already_exists" | "aborted" => 409,
        "permission_denied" => 403,
        "resource_exhausted" => 429,
        "unimplemented" => 501,
        "unavailable" => 503,
        "unauthenticated" => 401,
        _ => 500,
    }
}

/// Regression (was: 413 with resource_exhausted). Connect
/// protocol, Unary-Response: "If Bare-Message is an Error, HTTP-Status
/// should match Error.code as specified in the table", and the table maps
/// resource_exhausted to 429 (connect-go answers a message over its read
/// limit so).
#[tokio::test]
async fn connect_body_over_the_limit_is_resource_exhausted_with_its_http_status() {
    let s = setup().await;
    let body = format!(r#"{{"name": "{}"}}"#, "x".repeat(MAX_BODY));
    let raw = connect_json(&s.gateway, &[], &body).await;
    connect_error(
        &raw,
        connect_http_status("resource_exhausted"),
        "resource_exhausted",
    );
}

#[tokio::test]
async fn connect_unsupported_content_encoding_is_unimplemented() {
    let s = setup().await;
    let br = [("content-encoding", "br")];
    let raw = connect_json(&s.gateway, &br, r#"{"name": "shelves/1/books/1"}"#).await;
    let j = connect_error(&raw, 501, "unimplemented");
    assert!(j["message"].as_str().unwrap().contains("gzip"), "{j}");

    let br = [("connect-content-encoding", "br")];
    let body = envelope::encode(0, br#"{"parent": "shelves/1"}"#);
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &br, body).await;
    assert_eq!(end["error"]["code"], "unimplemented", "{end}");
    let message = end["error"]["message"].as_str().unwrap();
    assert!(message.contains("gzip"), "{end}");
}

/// Regression (was: HTTP 400 with code internal). The HTTP
/// status must agree with the code (Connect protocol, Unary-Response: it
/// "should match Error.code as specified in the table"; internal is 500).
/// Either code is defensible (connect-go says invalid_argument for a body
/// that does not decompress); the pair must agree.
#[tokio::test]
async fn connect_gzip_body_that_does_not_inflate_has_a_matching_http_status() {
    let s = setup().await;
    let gz = [("content-encoding", "gzip")];
    let raw = connect_json(&s.gateway, &gz, "not gzip").await;
    let j = raw.json();
    let code = j["code"].as_str().unwrap_or_default();
    assert!(["invalid_argument", "internal"].contains(&code), "{j}");
    connect_error(&raw, connect_http_status(code), code);
}

async fn connect_get(gw: &Running, path_and_query: &str) -> Raw {
    exchange(
        gw.addr,
        Http::V1,
        Method::GET,
        path_and_query,
        &[],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn connect_get_with_bad_base64_is_400_invalid_argument() {
    let s = setup().await;
    let raw = connect_get(
        &s.gateway,
        &format!("{GET_BOOK}?encoding=proto&base64=1&message=%21%21not*base64"),
    )
    .await;
    let j = connect_error(&raw, 400, "invalid_argument");
    assert!(j["message"].as_str().unwrap().contains("base64"), "{j}");
}

/// Regression (was: 400 invalid_argument). Connect protocol,
/// Unary-Get-Request: "If the server doesn't support the specified
/// Message-Codec, it must respond with an HTTP status code of 415
/// Unsupported Media Type" (as the gateway already does for POSTs).
#[tokio::test]
async fn connect_get_with_an_unknown_encoding_is_415() {
    let s = setup().await;
    let raw = connect_get(
        &s.gateway,
        &format!("{GET_BOOK}?encoding=xml&message=%3Cx%2F%3E"),
    )
    .await;
    assert_eq!(raw.status, 415, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn connect_get_without_encoding_is_not_served_as_connect() {
    let s = setup().await;
    let raw = connect_get(&s.gateway, &format!("{GET_BOOK}?message=%7B%7D")).await;
    assert_eq!(raw.status, 404, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn connect_stream_truncated_envelope_ends_with_an_error() {
    let s = setup().await;
    let mut body = envelope::encode(0, br#"{"parent": "shelves/1"}"#).to_vec();
    body.truncate(body.len() - 4);
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &[], body.into()).await;
    assert_eq!(end["error"]["code"], "internal", "{end}");
    let message = end["error"]["message"].as_str().unwrap();
    assert!(message.contains("ends inside a message"), "{end}");
}

#[tokio::test]
async fn connect_stream_envelope_over_the_limit_is_resource_exhausted() {
    let s = setup().await;
    let json = format!(r#"{{"parent": "{}"}}"#, "x".repeat(MAX_BODY));
    let body = envelope::encode(0, json.as_bytes());
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &[], body).await;
    assert_eq!(end["error"]["code"], "resource_exhausted", "{end}");
}

#[tokio::test]
async fn connect_stream_bad_json_names_the_message_and_field() {
    let s = setup().await;
    let body = envelope::encode(0, br#"{"parent": 7}"#);
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &[], body).await;
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
    assert_eq!(violated_field(&end["error"]), "[0].parent");
}

#[tokio::test]
async fn connect_unknown_method_is_501_unimplemented() {
    let s = setup().await;
    let ct = [("content-type", "application/proto")];
    let path = "/library.v1.LibraryService/Nope";
    let raw = connect_post(&s.gateway, path, &ct, &get_book_request()).await;
    let j = connect_error(&raw, 501, "unimplemented");
    assert!(j["message"].as_str().unwrap().contains(path), "{j}");
}

const LIST_SHELVES: &str = "/library.v1.LibraryService/ListShelves";

/// Regression (was: 400 internal "gzip message does not
/// inflate"). Connect protocol, Unary-Request: "Servers must not attempt to
/// decompress zero-length HTTP request content." An empty body is the empty
/// message, whatever Content-Encoding says.
#[tokio::test]
async fn connect_zero_length_body_is_not_decompressed() {
    let s = setup().await;
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let raw = connect_post(&s.gateway, LIST_SHELVES, &headers, b"").await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.json()["shelves"][0]["name"], "shelves/1");
}

/// Regression (was: 400 internal). Connect protocol,
/// Unary-Get-Request: "Servers must not attempt to decompress zero-length
/// Message-Query."
#[tokio::test]
async fn connect_get_zero_length_message_is_not_decompressed() {
    let s = setup().await;
    let query = "encoding=proto&base64=1&compression=gzip&message=";
    let raw = connect_get(&s.gateway, &format!("{LIST_SHELVES}?{query}")).await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/proto"));
}

#[tokio::test]
async fn connect_get_with_unsupported_compression_is_unimplemented() {
    let s = setup().await;
    let query = "encoding=proto&base64=1&compression=br&message=";
    let raw = connect_get(&s.gateway, &format!("{LIST_SHELVES}?{query}")).await;
    let j = connect_error(&raw, 501, "unimplemented");
    assert!(j["message"].as_str().unwrap().contains("gzip"), "{j}");
}

#[tokio::test]
async fn connect_timeout_of_eleven_digits_is_invalid_argument() {
    let s = setup().await;
    let long = [("connect-timeout-ms", "12345678901")];
    let raw = connect_json(&s.gateway, &long, r#"{"name": "shelves/1/books/1"}"#).await;
    connect_error(&raw, 400, "invalid_argument");
}

#[tokio::test]
async fn connect_stream_compressed_flag_without_an_encoding_ends_with_an_error() {
    let s = setup().await;
    let body = envelope::encode(0x01, &gzip(br#"{"parent": "shelves/1"}"#));
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &[], body).await;
    assert_eq!(end["error"]["code"], "internal", "{end}");
}

#[tokio::test]
async fn connect_stream_request_flagged_end_stream_ends_with_an_error() {
    let s = setup().await;
    let body = envelope::encode(0x02, br#"{"parent": "shelves/1"}"#);
    let end = connect_stream(&s.gateway, STREAM_BOOKS, &[], body).await;
    assert_eq!(end["error"]["code"], "internal", "{end}");
    let message = end["error"]["message"].as_str().unwrap();
    assert!(message.contains("0x02"), "{end}");
}
