//! The browser protocols across the matrix: native gRPC (h2c), gRPC-Web
//! binary and text, Connect unary and streaming (JSON and proto) ×
//! unary GetBook and server-streaming StreamBooks × success and an error with
//! details × the real example backend and the mock (stubs). Every call is a
//! raw hyper request over loopback (HTTP/1.1 for gRPC-Web and Connect, h2c
//! for gRPC), bounded in time. Then compression, metadata both ways, Connect
//! GETs and Connect-Timeout-Ms.

mod common;

use common::raw_http::{Http, Raw, exchange, gzip};

use std::convert::Infallible;
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use common::Running;
use common::backend::pb::google::rpc::{ResourceInfo, Status as RpcStatus};
use common::backend::pb::library::v1::{Book, GetBookRequest, StreamBooksRequest};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use prost::Message;
use protogate::protocol::connect::code_name;
use protogate::protocol::envelope::{self, Frame};
use serde_json::{Value, json};
use tonic::Code;

const GET_BOOK: &str = "/library.v1.LibraryService/GetBook";
const STREAM_BOOKS: &str = "/library.v1.LibraryService/StreamBooks";
const SHELF_2: [&str; 3] = ["A Brief History of Time", "The Selfish Gene", "Cosmos"];

// ---------------------------------------------------------------------------
// Raw HTTP over loopback.
// ---------------------------------------------------------------------------

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// gRPC-Web text: padded base64 chunks, concatenated. Every chunk is a
/// whole number of 4-character groups, so decoding group by group works
/// whatever the chunking.
fn decode_text(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert_eq!(clean.len() % 4, 0, "base64 body: {clean:?}");
    clean
        .chunks(4)
        .flat_map(|group| STANDARD.decode(group).expect("base64 group"))
        .collect()
}

/// Base64 with or without padding.
fn unbase64(text: &str) -> Vec<u8> {
    STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

// ---------------------------------------------------------------------------
// The protocols, normalised to one outcome.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Grpc,
    WebBinary,
    WebText,
    ConnectJson,
    ConnectProto,
}

impl Wire {
    fn is_connect(self) -> bool {
        matches!(self, Wire::ConnectJson | Wire::ConnectProto)
    }
}

/// A request message in both encodings.
struct Msg {
    proto: Vec<u8>,
    json: String,
}

fn get_book(name: &str) -> Msg {
    Msg {
        proto: GetBookRequest { name: name.into() }.encode_to_vec(),
        json: json!({ "name": name }).to_string(),
    }
}

fn stream_books(parent: &str) -> Msg {
    Msg {
        proto: StreamBooksRequest {
            parent: parent.into(),
            interval: None,
            repeat: 0,
        }
        .encode_to_vec(),
        json: json!({ "parent": parent }).to_string(),
    }
}

/// A StreamBooks request pausing `seconds` between books.
fn slow_stream_books(parent: &str, seconds: i64) -> Msg {
    Msg {
        proto: StreamBooksRequest {
            parent: parent.into(),
            interval: Some(prost_types::Duration { seconds, nanos: 0 }),
            repeat: 0,
        }
        .encode_to_vec(),
        json: json!({ "parent": parent, "interval": format!("{seconds}s") }).to_string(),
    }
}

/// A failed call, whatever the protocol.
#[derive(Debug)]
struct Failure {
    code: Code,
    message: String,
    details: Vec<prost_types::Any>,
}

/// What a call came to, whatever the protocol.
#[derive(Debug)]
struct Outcome {
    http: u16,
    headers: HeaderMap,
    /// The titles of the Book messages received, in order.
    titles: Vec<String>,
    /// `None`: the call succeeded.
    failure: Option<Failure>,
    /// gRPC trailers, gRPC-Web's trailer frame (or trailers-only headers),
    /// Connect's end-stream metadata or unary `trailer-*` headers (prefix
    /// removed).
    trailers: HeaderMap,
    /// The status came in the headers, with no body (gRPC, gRPC-Web).
    trailers_only: bool,
    /// Response messages that arrived compressed.
    compressed: usize,
}

/// The HTTP version, fixed headers and body of a call.
fn request_parts(
    proto: Wire,
    msg: &Msg,
    streaming: bool,
) -> (Http, &'static [(&'static str, &'static str)], Bytes) {
    let framed = || envelope::encode(0, &msg.proto);
    match proto {
        Wire::Grpc => (
            Http::V2,
            &[("content-type", "application/grpc"), ("te", "trailers")],
            framed(),
        ),
        Wire::WebBinary => (
            Http::V1,
            &[
                ("content-type", "application/grpc-web+proto"),
                ("x-grpc-web", "1"),
            ],
            framed(),
        ),
        Wire::WebText => (
            Http::V1,
            &[
                ("content-type", "application/grpc-web-text"),
                ("accept", "application/grpc-web-text"),
                ("x-grpc-web", "1"),
            ],
            STANDARD.encode(framed()).into(),
        ),
        Wire::ConnectJson if streaming => (
            Http::V1,
            &[
                ("content-type", "application/connect+json"),
                ("connect-protocol-version", "1"),
            ],
            envelope::encode(0, msg.json.as_bytes()),
        ),
        Wire::ConnectJson => (
            Http::V1,
            &[
                ("content-type", "application/json"),
                ("connect-protocol-version", "1"),
            ],
            Bytes::from(msg.json.clone()),
        ),
        Wire::ConnectProto if streaming => (
            Http::V1,
            &[
                ("content-type", "application/connect+proto"),
                ("connect-protocol-version", "1"),
            ],
            framed(),
        ),
        Wire::ConnectProto => (
            Http::V1,
            &[
                ("content-type", "application/proto"),
                ("connect-protocol-version", "1"),
            ],
            Bytes::from(msg.proto.clone()),
        ),
    }
}

/// Calls `path` with `msg` in `proto`'s terms (`streaming`: the method
/// streams, which decides Connect's content type), `extra` headers added.
async fn call(
    gw: &Running,
    proto: Wire,
    path: &str,
    msg: &Msg,
    streaming: bool,
    extra: &[(&str, &str)],
) -> Outcome {
    let (http, fixed, body) = request_parts(proto, msg, streaming);
    let mut headers: Vec<(&str, &str)> = fixed.to_vec();
    headers.extend_from_slice(extra);
    let raw = exchange(gw.addr, http, Method::POST, path, &headers, body).await;
    outcome(proto, streaming, raw)
}

fn outcome(proto: Wire, streaming: bool, raw: Raw) -> Outcome {
    match proto {
        Wire::Grpc => grpc_outcome(raw),
        Wire::WebBinary => grpc_web_outcome(raw, false),
        Wire::WebText => grpc_web_outcome(raw, true),
        Wire::ConnectJson | Wire::ConnectProto if streaming => {
            connect_stream_outcome(raw, proto == Wire::ConnectJson)
        }
        Wire::ConnectJson => connect_unary_outcome(raw, true),
        Wire::ConnectProto => connect_unary_outcome(raw, false),
    }
}

fn title_of_proto(bytes: &[u8]) -> String {
    Book::decode(bytes).expect("a Book message").title
}

fn title_of_json(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not a JSON message ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    });
    v["title"].as_str().unwrap_or_default().to_string()
}

/// A message frame's payload, inflated when flagged compressed.
fn frame_payload(f: &Frame, gzip_negotiated: bool) -> (Vec<u8>, bool) {
    match f.flags & 0x01 {
        0 => (f.payload.to_vec(), false),
        _ => {
            assert!(gzip_negotiated, "a compressed frame without an encoding");
            (gunzip(&f.payload), true)
        }
    }
}

fn grpc_failure(status: &HeaderMap) -> Option<Failure> {
    let text = |k: &str| status.get(k).map(|v| v.to_str().unwrap().to_string());
    let code: i32 = text("grpc-status")
        .unwrap_or_else(|| panic!("no grpc-status in {status:?}"))
        .parse()
        .unwrap();
    if code == 0 {
        return None;
    }
    let message = percent_encoding::percent_decode_str(&text("grpc-message").unwrap_or_default())
        .decode_utf8_lossy()
        .into_owned();
    let details = text("grpc-status-details-bin")
        .map(|b| RpcStatus::decode(unbase64(&b).as_slice()).expect("google.rpc.Status"))
        .map(|s| s.details)
        .unwrap_or_default();
    Some(Failure {
        code: Code::from_i32(code),
        message,
        details,
    })
}

fn grpc_outcome(raw: Raw) -> Outcome {
    assert_eq!(raw.status, 200, "gRPC answers 200: {raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/grpc"));
    let gzip = raw.header("grpc-encoding") == Some("gzip");
    let frames = envelope::decode_all(&raw.body, usize::MAX).expect("whole gRPC frames");
    let mut titles = Vec::new();
    let mut compressed = 0;
    for f in &frames {
        let (payload, was) = frame_payload(f, gzip);
        compressed += usize::from(was);
        titles.push(title_of_proto(&payload));
    }
    let trailers_only = !raw.trailers.contains_key("grpc-status");
    if trailers_only {
        assert!(raw.body.is_empty(), "trailers-only with a body: {raw:?}");
    }
    let status = if trailers_only {
        raw.headers.clone()
    } else {
        raw.trailers.clone()
    };
    Outcome {
        http: raw.status,
        failure: grpc_failure(&status),
        headers: raw.headers,
        titles,
        trailers: status,
        trailers_only,
        compressed,
    }
}

/// A gRPC-Web trailer frame's `key:value\r\n` lines.
fn parse_trailer_frame(payload: &[u8]) -> HeaderMap {
    let text = std::str::from_utf8(payload).expect("trailers are text");
    let mut out = HeaderMap::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').expect("key:value");
        assert_eq!(k, k.to_ascii_lowercase(), "trailer keys are lower case");
        out.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v.trim()).unwrap(),
        );
    }
    out
}

fn grpc_web_outcome(raw: Raw, text: bool) -> Outcome {
    assert_eq!(raw.status, 200, "gRPC-Web answers 200: {raw:?}");
    let ct = raw.header("content-type").unwrap_or_default();
    let want = if text {
        "application/grpc-web-text"
    } else {
        "application/grpc-web"
    };
    assert!(ct.starts_with(want), "content-type {ct}, want {want}");
    assert!(!ct.starts_with("application/grpc-web-text") || text);
    let bytes = if text {
        decode_text(&raw.body)
    } else {
        raw.body.to_vec()
    };
    let frames = envelope::decode_all(&bytes, usize::MAX).expect("whole gRPC-Web frames");
    let gzip = raw.header("grpc-encoding") == Some("gzip");
    let (mut titles, mut compressed, mut trailer_frame) = (Vec::new(), 0, None);
    for (i, f) in frames.iter().enumerate() {
        if f.flags & 0x80 != 0 {
            assert_eq!(i, frames.len() - 1, "the trailer frame comes last");
            trailer_frame = Some(parse_trailer_frame(&f.payload));
            continue;
        }
        let (payload, was) = frame_payload(f, gzip);
        compressed += usize::from(was);
        titles.push(title_of_proto(&payload));
    }
    let trailers_only = trailer_frame.is_none();
    if trailers_only {
        assert!(bytes.is_empty(), "no trailer frame, yet a body: {raw:?}");
    }
    let status = trailer_frame.unwrap_or_else(|| raw.headers.clone());
    Outcome {
        http: raw.status,
        failure: grpc_failure(&status),
        headers: raw.headers,
        titles,
        trailers: status,
        trailers_only,
        compressed,
    }
}

fn connect_code(name: &str) -> Code {
    (0..=16)
        .map(Code::from_i32)
        .find(|c| code_name(*c) == name)
        .unwrap_or_else(|| panic!("not a Connect code: {name:?}"))
}

fn connect_failure(error: &Value) -> Failure {
    let code = connect_code(error["code"].as_str().expect("error.code"));
    let details = error["details"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|d| {
                    let value = d["value"].as_str().expect("detail value");
                    assert!(!value.ends_with('='), "detail values are unpadded: {d}");
                    prost_types::Any {
                        type_url: format!("type.googleapis.com/{}", d["type"].as_str().unwrap()),
                        value: unbase64(value),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Failure {
        code,
        message: error["message"].as_str().unwrap_or_default().to_string(),
        details,
    }
}

fn connect_unary_outcome(raw: Raw, json: bool) -> Outcome {
    let mut trailers = HeaderMap::new();
    for (k, v) in &raw.headers {
        if let Some(name) = k.as_str().strip_prefix("trailer-") {
            trailers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), v.clone());
        }
    }
    let body = match raw.header("content-encoding") {
        Some("gzip") => gunzip(&raw.body),
        None => raw.body.to_vec(),
        Some(other) => panic!("unexpected content-encoding {other}"),
    };
    let ct = raw.header("content-type");
    let (titles, failure) = if raw.status == 200 {
        let want = if json {
            "application/json"
        } else {
            "application/proto"
        };
        assert_eq!(ct, Some(want), "{raw:?}");
        let title = if json {
            title_of_json(&body)
        } else {
            title_of_proto(&body)
        };
        (vec![title], None)
    } else {
        assert_eq!(ct, Some("application/json"), "Connect errors are JSON");
        let error: Value = serde_json::from_slice(&body).expect("a Connect error body");
        (Vec::new(), Some(connect_failure(&error)))
    };
    Outcome {
        http: raw.status,
        compressed: usize::from(raw.header("content-encoding").is_some()),
        headers: raw.headers,
        titles,
        failure,
        trailers,
        trailers_only: false,
    }
}

/// Connect's end-stream metadata as headers.
fn metadata_headers(metadata: &Value) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, values) in metadata.as_object().into_iter().flatten() {
        for v in values.as_array().expect("metadata values are arrays") {
            out.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
            );
        }
    }
    out
}

fn connect_stream_outcome(raw: Raw, json: bool) -> Outcome {
    assert_eq!(raw.status, 200, "Connect streams answer 200: {raw:?}");
    let want = if json {
        "application/connect+json"
    } else {
        "application/connect+proto"
    };
    assert_eq!(raw.header("content-type"), Some(want));
    let gzip = raw.header("connect-content-encoding") == Some("gzip");
    let frames = envelope::decode_all(&raw.body, usize::MAX).expect("whole envelopes");
    let (last, messages) = frames
        .split_last()
        .expect("at least the end-stream message");
    assert_eq!(last.flags & 0x02, 0x02, "the last envelope ends the stream");
    let (mut titles, mut compressed) = (Vec::new(), 0);
    for f in messages {
        assert_eq!(f.flags & 0x02, 0, "end-stream before the end");
        let (payload, was) = frame_payload(f, gzip);
        compressed += usize::from(was);
        titles.push(if json {
            title_of_json(&payload)
        } else {
            title_of_proto(&payload)
        });
    }
    let (end, _) = frame_payload(last, gzip);
    let end: Value = serde_json::from_slice(&end).expect("end-stream JSON");
    let failure = end.get("error").map(connect_failure);
    Outcome {
        http: raw.status,
        headers: raw.headers,
        titles,
        failure,
        trailers: metadata_headers(&end["metadata"]),
        trailers_only: false,
        compressed,
    }
}

// ---------------------------------------------------------------------------
// Gateways: in front of the real backend, or mocking with stubs.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Backend {
    Real,
    Mock,
}

/// A gateway and what it needs kept alive.
struct Setup {
    gateway: Running,
    _backend: Option<Running>,
    _stubs: Option<tempfile::TempDir>,
}

/// Stubs that answer as the real backend does for the matrix's requests.
const STUBS: &str = r#"
stubs:
  - method: library.v1.LibraryService.GetBook
    match: {request: {name: shelves/1/books/1}}
    response:
      message: {name: shelves/1/books/1, title: "The Left Hand of Darkness"}
  - method: library.v1.LibraryService.GetBook
    match: {request: {name: {regex: "/books/999$"}}}
    response:
      error:
        code: NOT_FOUND
        message: "{{ request.name }} not found"
        details:
          - "@type": type.googleapis.com/google.rpc.ResourceInfo
            resourceType: library.v1.Book
            resourceName: "{{ request.name }}"
            description: no such resource
  - method: library.v1.LibraryService.StreamBooks
    match: {request: {parent: shelves/2}}
    response:
      stream:
        - {message: {title: "A Brief History of Time"}}
        - {message: {title: "The Selfish Gene"}}
        - {message: {title: "Cosmos"}}
  - method: library.v1.LibraryService.StreamBooks
    match: {request: {parent: shelves/999}}
    response:
      error:
        code: NOT_FOUND
        message: "{{ request.parent }} not found"
        details:
          - "@type": type.googleapis.com/google.rpc.ResourceInfo
            resourceType: library.v1.Shelf
            resourceName: "{{ request.parent }}"
            description: no such resource
"#;

impl Setup {
    async fn start(backend: Backend) -> Setup {
        Setup::with_yaml(backend, "").await
    }

    /// `extra` is appended to the routes YAML.
    async fn with_yaml(backend: Backend, extra: &str) -> Setup {
        match backend {
            Backend::Real => {
                let (upstream, _) = common::start_backend().await;
                let yaml = format!("{}\n{extra}\n", common::bundled_routes_yaml());
                let (gateway, _) = common::start_gateway(&yaml, Some(&upstream.url())).await;
                Setup {
                    gateway,
                    _backend: Some(upstream),
                    _stubs: None,
                }
            }
            Backend::Mock => {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(dir.path().join("matrix.yaml"), STUBS).unwrap();
                let yaml = format!(
                    "mock:\n  enabled: true\n  stubs: {}\n{extra}\n",
                    dir.path().display()
                );
                let (gateway, _) = common::start_gateway(&yaml, None).await;
                Setup {
                    gateway,
                    _backend: None,
                    _stubs: Some(dir),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The matrix.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Cell {
    UnaryOk,
    UnaryError,
    StreamOk,
    StreamError,
}

fn assert_success(o: &Outcome, proto: Wire, streaming: bool, titles: &[&str]) {
    assert!(o.failure.is_none(), "{proto:?}: expected success: {o:#?}");
    assert_eq!(o.http, 200, "{proto:?}");
    assert_eq!(o.titles, titles, "{proto:?}");
    match proto {
        Wire::Grpc | Wire::WebBinary | Wire::WebText => {
            assert!(!o.trailers_only, "{proto:?}: OK comes after the messages");
            assert_eq!(o.trailers["grpc-status"], "0", "{proto:?}");
        }
        Wire::ConnectJson | Wire::ConnectProto if !streaming => {
            assert!(!o.headers.contains_key("grpc-status"), "{proto:?}: {o:?}");
        }
        _ => {}
    }
}

/// NOT_FOUND for `name`, with one google.rpc.ResourceInfo detail naming it;
/// Connect unary as HTTP 404, everything else in HTTP 200.
fn assert_not_found(o: &Outcome, proto: Wire, streaming: bool, name: &str) {
    let f = o
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("{proto:?}: expected NOT_FOUND for {name}: {o:#?}"));
    assert_eq!(f.code, Code::NotFound, "{proto:?}: {f:?}");
    assert!(f.message.contains(name), "{proto:?}: {f:?}");
    assert!(o.titles.is_empty(), "{proto:?}: {o:?}");
    let want_http = if proto.is_connect() && !streaming {
        404
    } else {
        200
    };
    assert_eq!(o.http, want_http, "{proto:?}");
    assert_eq!(f.details.len(), 1, "{proto:?}: {f:?}");
    assert_eq!(
        f.details[0].type_url, "type.googleapis.com/google.rpc.ResourceInfo",
        "{proto:?}"
    );
    let info = ResourceInfo::decode(f.details[0].value.as_slice()).unwrap();
    assert_eq!(info.resource_name, name, "{proto:?}");
}

async fn run(proto: Wire, backend: Backend, cell: Cell) {
    let setup = Setup::start(backend).await;
    let gw = &setup.gateway;
    match cell {
        Cell::UnaryOk => {
            let o = call(
                gw,
                proto,
                GET_BOOK,
                &get_book("shelves/1/books/1"),
                false,
                &[],
            )
            .await;
            assert_success(&o, proto, false, &["The Left Hand of Darkness"]);
        }
        Cell::UnaryError => {
            let name = "shelves/1/books/999";
            let o = call(gw, proto, GET_BOOK, &get_book(name), false, &[]).await;
            assert_not_found(&o, proto, false, name);
        }
        Cell::StreamOk => {
            let o = call(
                gw,
                proto,
                STREAM_BOOKS,
                &stream_books("shelves/2"),
                true,
                &[],
            )
            .await;
            assert_success(&o, proto, true, &SHELF_2);
        }
        Cell::StreamError => {
            let o = call(
                gw,
                proto,
                STREAM_BOOKS,
                &stream_books("shelves/999"),
                true,
                &[],
            )
            .await;
            assert_not_found(&o, proto, true, "shelves/999");
        }
    }
}

/// The real backend fails StreamBooks with ABORTED after `x-fail-after`
/// books: the books sent come first, then the status.
async fn run_aborted_midway(proto: Wire) {
    let setup = Setup::start(Backend::Real).await;
    let o = call(
        &setup.gateway,
        proto,
        STREAM_BOOKS,
        &stream_books("shelves/2"),
        true,
        &[("x-fail-after", "1")],
    )
    .await;
    assert_eq!(o.http, 200, "{proto:?}");
    assert_eq!(o.titles, [SHELF_2[0]], "{proto:?}");
    assert!(!o.trailers_only, "{proto:?}: messages were sent");
    let f = o.failure.as_ref().expect("ABORTED");
    assert_eq!(f.code, Code::Aborted, "{proto:?}: {f:?}");
    assert_eq!(f.message, "failed after 1 books", "{proto:?}");
}

macro_rules! cells {
    ($proto:expr, $backend:expr) => {
        #[tokio::test]
        async fn unary_ok() {
            super::super::run($proto, $backend, super::super::Cell::UnaryOk).await;
        }
        #[tokio::test]
        async fn unary_error_with_details() {
            super::super::run($proto, $backend, super::super::Cell::UnaryError).await;
        }
        #[tokio::test]
        async fn stream_ok() {
            super::super::run($proto, $backend, super::super::Cell::StreamOk).await;
        }
        #[tokio::test]
        async fn stream_error_with_details() {
            super::super::run($proto, $backend, super::super::Cell::StreamError).await;
        }
    };
}

macro_rules! protocol {
    ($name:ident, $proto:expr) => {
        mod $name {
            mod real_upstream {
                cells!($proto, super::super::Backend::Real);
                #[tokio::test]
                async fn stream_aborted_after_one_book() {
                    super::super::run_aborted_midway($proto).await;
                }
            }
            mod mock {
                cells!($proto, super::super::Backend::Mock);
            }
        }
    };
}

protocol!(grpc, crate::Wire::Grpc);
protocol!(grpc_web_binary, crate::Wire::WebBinary);
protocol!(grpc_web_text, crate::Wire::WebText);
protocol!(connect_json, crate::Wire::ConnectJson);
protocol!(connect_proto, crate::Wire::ConnectProto);

// ---------------------------------------------------------------------------
// Connect specifics: the error body, GET, timeouts.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn connect_unary_error_body_is_connect_json_with_typed_details() {
    let setup = Setup::start(Backend::Real).await;
    let raw = exchange(
        setup.gateway.addr,
        Http::V1,
        Method::POST,
        GET_BOOK,
        &[
            ("content-type", "application/json"),
            ("connect-protocol-version", "1"),
        ],
        Bytes::from(get_book("shelves/1/books/999").json),
    )
    .await;
    assert_eq!(raw.status, 404);
    assert_eq!(raw.header("content-type"), Some("application/json"));
    let j: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(j["code"], "not_found", "{j}");
    assert_eq!(j["message"], "shelves/1/books/999 not found");
    let detail = &j["details"][0];
    assert_eq!(detail["type"], "google.rpc.ResourceInfo", "{j}");
    let value = detail["value"].as_str().unwrap();
    assert!(!value.contains('='), "unpadded base64: {value}");
    let info = ResourceInfo::decode(unbase64(value).as_slice()).unwrap();
    assert_eq!(info.resource_type, "library.v1.Book");
    assert_eq!(
        detail["debug"]["resourceName"], "shelves/1/books/999",
        "{j}"
    );
}

async fn connect_get(gw: &Running, query: &str) -> Raw {
    exchange(
        gw.addr,
        Http::V1,
        Method::GET,
        &format!("{GET_BOOK}?{query}"),
        &[],
        Bytes::new(),
    )
    .await
}

#[tokio::test]
async fn connect_get_with_a_json_message_in_the_query() {
    let setup = Setup::start(Backend::Real).await;
    let message: String =
        form_urlencoded::byte_serialize(br#"{"name":"shelves/2/books/3"}"#).collect();
    let raw = connect_get(
        &setup.gateway,
        &format!("encoding=json&message={message}&connect=v1"),
    )
    .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_eq!(title_of_json(&raw.body), "Cosmos");
}

#[tokio::test]
async fn connect_get_with_a_base64url_proto_message() {
    let setup = Setup::start(Backend::Real).await;
    let message = URL_SAFE_NO_PAD.encode(get_book("shelves/2/books/3").proto);
    let raw = connect_get(
        &setup.gateway,
        &format!("encoding=proto&base64=1&message={message}"),
    )
    .await;
    assert_eq!(raw.status, 200, "{raw:?}");
    assert_eq!(raw.header("content-type"), Some("application/proto"));
    assert_eq!(title_of_proto(&raw.body), "Cosmos");
}

#[tokio::test]
async fn connect_get_errors_answer_connect_json() {
    let setup = Setup::start(Backend::Mock).await;
    let message: String =
        form_urlencoded::byte_serialize(br#"{"name":"shelves/1/books/999"}"#).collect();
    let raw = connect_get(&setup.gateway, &format!("encoding=json&message={message}")).await;
    let o = connect_unary_outcome(raw, true);
    assert_not_found(&o, Wire::ConnectJson, false, "shelves/1/books/999");
}

#[tokio::test]
async fn connect_get_on_a_method_with_side_effects_is_405() {
    let setup = Setup::start(Backend::Real).await;
    let raw = exchange(
        setup.gateway.addr,
        Http::V1,
        Method::GET,
        "/library.v1.LibraryService/CreateShelf?encoding=json&message=%7B%7D",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(raw.status, 405, "{raw:?}");
    assert_eq!(raw.header("allow"), Some("POST"));
    assert_eq!(raw.header("content-type"), Some("application/json"));
    let j: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(j["code"], "unimplemented", "{j}");
}

#[tokio::test]
async fn connect_timeout_ms_ends_a_slow_stream_with_deadline_exceeded() {
    let setup = Setup::start(Backend::Real).await;
    for proto in [Wire::ConnectJson, Wire::ConnectProto] {
        let o = call(
            &setup.gateway,
            proto,
            STREAM_BOOKS,
            &slow_stream_books("shelves/1", 30),
            true,
            &[("connect-timeout-ms", "300")],
        )
        .await;
        assert_eq!(o.http, 200, "{proto:?}");
        assert!(o.titles.len() <= 1, "{proto:?}: {o:?}");
        let f = o.failure.as_ref().expect("deadline_exceeded");
        assert_eq!(f.code, Code::DeadlineExceeded, "{proto:?}: {f:?}");
    }
}

#[tokio::test]
async fn grpc_web_honours_grpc_timeout() {
    let setup = Setup::start(Backend::Real).await;
    for proto in [Wire::WebBinary, Wire::WebText] {
        let o = call(
            &setup.gateway,
            proto,
            STREAM_BOOKS,
            &slow_stream_books("shelves/1", 30),
            true,
            &[("grpc-timeout", "300m")],
        )
        .await;
        let f = o.failure.as_ref().expect("DEADLINE_EXCEEDED");
        assert_eq!(f.code, Code::DeadlineExceeded, "{proto:?}: {f:?}");
    }
}

// ---------------------------------------------------------------------------
// Metadata both ways.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn request_metadata_reaches_the_backend_and_response_metadata_returns() {
    let setup = Setup::start(Backend::Real).await;
    let protos = [
        Wire::Grpc,
        Wire::WebBinary,
        Wire::WebText,
        Wire::ConnectJson,
        Wire::ConnectProto,
    ];
    for proto in protos {
        for (path, msg, streaming) in [
            (GET_BOOK, get_book("shelves/1/books/1"), false),
            (STREAM_BOOKS, stream_books("shelves/2"), true),
        ] {
            let echo = [("x-echo-tenant", "acme")];
            let o = call(&setup.gateway, proto, path, &msg, streaming, &echo).await;
            let what = format!("{proto:?} {path}");
            assert!(o.failure.is_none(), "{what}: {o:?}");
            assert_eq!(o.headers["x-echo-tenant"], "acme", "{what}");
            assert_eq!(o.headers["x-served-by"], "library-server", "{what}");
        }
    }
}

/// Regression (the end-stream metadata once held `content-type:
/// application/grpc` and `date`). When the upstream fails a stream with a
/// trailers-only response, its HTTP headers become the status's metadata,
/// and the Connect end-stream message passes them on as trailing metadata;
/// the unary path filters them (connect/mod.rs `metadata_headers`). They
/// are the upstream hop's framing, not call metadata (grpc-go treats
/// content-type as a reserved header, never metadata).
#[tokio::test]
async fn connect_stream_error_metadata_excludes_the_upstreams_framing_headers() {
    let setup = Setup::start(Backend::Real).await;
    for proto in [Wire::ConnectJson, Wire::ConnectProto] {
        let msg = stream_books("shelves/999");
        let echo = [("x-echo-tenant", "acme")];
        let o = call(&setup.gateway, proto, STREAM_BOOKS, &msg, true, &echo).await;
        assert_eq!(o.failure.as_ref().map(|f| f.code), Some(Code::NotFound));
        assert_eq!(o.trailers["x-echo-tenant"], "acme", "{proto:?}");
        for framing in ["content-type", "content-length", "date"] {
            let metadata = &o.trailers;
            assert!(
                !metadata.contains_key(framing),
                "{proto:?}: {framing} in {metadata:?}"
            );
        }
    }
}

/// A gRPC upstream that answers every call with one Book, a response header
/// and trailing metadata (the example backend sends none).
async fn start_trailing_upstream() -> Running {
    use axum::body::Body;
    let app = axum::Router::new().fallback(|| async {
        let book = Book {
            title: "Trailing".into(),
            ..Default::default()
        };
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("x-cost", HeaderValue::from_static("237"));
        let frames = vec![
            Ok::<_, Infallible>(hyper::body::Frame::data(envelope::encode(
                0,
                &book.encode_to_vec(),
            ))),
            Ok(hyper::body::Frame::trailers(trailers)),
        ];
        let body = Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )));
        http::Response::builder()
            .header("content-type", "application/grpc")
            .header("x-lead", "first")
            .body(body)
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Running::new(addr, tx)
}

#[tokio::test]
async fn trailing_metadata_reaches_each_protocols_own_place() {
    let upstream = start_trailing_upstream().await;
    let (gateway, _) = common::start_gateway("", Some(&upstream.url())).await;
    let cases = [
        (Wire::Grpc, false),
        (Wire::WebBinary, false),
        (Wire::WebText, false),
        (Wire::ConnectJson, false),
        (Wire::ConnectProto, false),
        (Wire::ConnectJson, true),
        (Wire::ConnectProto, true),
    ];
    for (proto, streaming) in cases {
        let (path, msg) = if streaming {
            (STREAM_BOOKS, stream_books("shelves/1"))
        } else {
            (GET_BOOK, get_book("shelves/1/books/1"))
        };
        let o = call(&gateway, proto, path, &msg, streaming, &[]).await;
        let what = format!("{proto:?} streaming={streaming}");
        assert!(o.failure.is_none(), "{what}: {o:?}");
        assert_eq!(o.titles, ["Trailing"], "{what}");
        assert_eq!(o.headers["x-lead"], "first", "{what}: leading metadata");
        assert_eq!(o.trailers["x-cost"], "237", "{what}: trailing metadata");
        assert!(!o.headers.contains_key("x-cost"), "{what}: not a header");
    }
}

// ---------------------------------------------------------------------------
// Compression.
// ---------------------------------------------------------------------------

const SMALL_MIN: &str = "compression: {min_size: 0}";

#[tokio::test]
async fn grpc_gzip_request_frame_is_inflated() {
    let setup = Setup::start(Backend::Real).await;
    let packed = gzip(&get_book("shelves/1/books/2").proto);
    let raw = exchange(
        setup.gateway.addr,
        Http::V2,
        Method::POST,
        GET_BOOK,
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", "gzip"),
        ],
        envelope::encode(1, &packed),
    )
    .await;
    let o = grpc_outcome(raw);
    assert_success(&o, Wire::Grpc, false, &["Beloved"]);
}

#[tokio::test]
async fn grpc_responses_are_gzipped_when_accepted() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    let accept = [("grpc-accept-encoding", "gzip")];
    let gw = &setup.gateway;
    let o = call(
        gw,
        Wire::Grpc,
        GET_BOOK,
        &get_book("shelves/1/books/1"),
        false,
        &accept,
    )
    .await;
    assert_eq!(o.headers["grpc-encoding"], "gzip");
    assert_success(&o, Wire::Grpc, false, &["The Left Hand of Darkness"]);
    assert_eq!(o.compressed, 1);
    let o = call(
        gw,
        Wire::Grpc,
        STREAM_BOOKS,
        &stream_books("shelves/2"),
        true,
        &accept,
    )
    .await;
    assert_success(&o, Wire::Grpc, true, &SHELF_2);
    assert_eq!(o.compressed, 3);
}

#[tokio::test]
async fn grpc_messages_under_min_size_stay_plain() {
    let setup = Setup::start(Backend::Real).await;
    let accept = [("grpc-accept-encoding", "identity, gzip")];
    let msg = get_book("shelves/1/books/1");
    let o = call(&setup.gateway, Wire::Grpc, GET_BOOK, &msg, false, &accept).await;
    assert_success(&o, Wire::Grpc, false, &["The Left Hand of Darkness"]);
    assert_eq!(o.compressed, 0, "a Book is under the default 1 KiB");
}

#[tokio::test]
async fn grpc_responses_are_plain_unless_accepted() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    let msg = stream_books("shelves/2");
    let o = call(&setup.gateway, Wire::Grpc, STREAM_BOOKS, &msg, true, &[]).await;
    assert_success(&o, Wire::Grpc, true, &SHELF_2);
    assert_eq!(o.compressed, 0);
    assert!(!o.headers.contains_key("grpc-encoding"), "{:?}", o.headers);
}

#[tokio::test]
async fn grpc_web_gzip_both_ways() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    for proto in [Wire::WebBinary, Wire::WebText] {
        let frame = envelope::encode(1, &gzip(&stream_books("shelves/2").proto));
        let body = match proto {
            Wire::WebText => Bytes::from(STANDARD.encode(frame)),
            _ => frame,
        };
        let (http, fixed, _) = request_parts(proto, &stream_books("x"), true);
        let mut headers = fixed.to_vec();
        headers.extend([("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")]);
        let raw = exchange(
            setup.gateway.addr,
            http,
            Method::POST,
            STREAM_BOOKS,
            &headers,
            body,
        );
        let o = outcome(proto, true, raw.await);
        assert_success(&o, proto, true, &SHELF_2);
        assert_eq!(o.compressed, 3, "{proto:?}");
    }
}

#[tokio::test]
async fn connect_unary_gzip_both_ways() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    let raw = exchange(
        setup.gateway.addr,
        Http::V1,
        Method::POST,
        GET_BOOK,
        &[
            ("content-type", "application/json"),
            ("connect-protocol-version", "1"),
            ("content-encoding", "gzip"),
            ("accept-encoding", "gzip"),
        ],
        gzip(get_book("shelves/1/books/3").json.as_bytes()).into(),
    )
    .await;
    assert_eq!(raw.header("content-encoding"), Some("gzip"));
    let o = connect_unary_outcome(raw, true);
    assert_success(&o, Wire::ConnectJson, false, &["Good Omens"]);
}

#[tokio::test]
async fn connect_unary_is_plain_without_accept_encoding() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    let msg = get_book("shelves/1/books/3");
    let o = call(
        &setup.gateway,
        Wire::ConnectProto,
        GET_BOOK,
        &msg,
        false,
        &[],
    )
    .await;
    assert_success(&o, Wire::ConnectProto, false, &["Good Omens"]);
    assert_eq!(o.compressed, 0);
}

#[tokio::test]
async fn connect_stream_gzip_both_ways() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    for (proto, ct) in [
        (Wire::ConnectJson, "application/connect+json"),
        (Wire::ConnectProto, "application/connect+proto"),
    ] {
        let msg = stream_books("shelves/2");
        let payload = match proto {
            Wire::ConnectJson => msg.json.into_bytes(),
            _ => msg.proto,
        };
        let raw = exchange(
            setup.gateway.addr,
            Http::V1,
            Method::POST,
            STREAM_BOOKS,
            &[
                ("content-type", ct),
                ("connect-content-encoding", "gzip"),
                ("connect-accept-encoding", "gzip"),
            ],
            envelope::encode(1, &gzip(&payload)),
        )
        .await;
        assert_eq!(raw.header("connect-content-encoding"), Some("gzip"));
        let o = connect_stream_outcome(raw, proto == Wire::ConnectJson);
        assert_success(&o, proto, true, &SHELF_2);
        assert_eq!(o.compressed, 3, "{proto:?}");
    }
}

async fn rest_get(gw: &Running, path: &str, accept_encoding: Option<&str>) -> Raw {
    let headers: Vec<(&str, &str)> = accept_encoding
        .map(|e| vec![("accept-encoding", e)])
        .unwrap_or_default();
    exchange(gw.addr, Http::V1, Method::GET, path, &headers, Bytes::new()).await
}

#[tokio::test]
async fn rest_responses_are_compressed_as_accept_encoding_allows() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    let path = "/v1/shelves/1/books";
    let plain = rest_get(&setup.gateway, path, None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    let plain_json: Value = serde_json::from_slice(&plain.body).unwrap();

    let gz = rest_get(&setup.gateway, path, Some("gzip")).await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let inflated: Value = serde_json::from_slice(&gunzip(&gz.body)).unwrap();
    assert_eq!(inflated, plain_json);

    // No br or zstd decoder among the crate's dependencies: the header, and
    // a body that is not the plain JSON.
    for encoding in ["br", "zstd"] {
        let r = rest_get(&setup.gateway, path, Some(encoding)).await;
        assert_eq!(r.status, 200, "{encoding}");
        assert_eq!(r.header("content-encoding"), Some(encoding));
        assert!(!r.body.is_empty(), "{encoding}");
        assert_ne!(r.body, plain.body, "{encoding}");
    }
}

#[tokio::test]
async fn rest_ndjson_streams_are_never_compressed() {
    let setup = Setup::with_yaml(Backend::Real, SMALL_MIN).await;
    let raw = rest_get(&setup.gateway, "/v1/shelves/2/books:stream", Some("gzip")).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(raw.header("content-encoding"), None);
    let titles: Vec<String> = raw
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(title_of_json)
        .collect();
    assert_eq!(titles, SHELF_2);
}
