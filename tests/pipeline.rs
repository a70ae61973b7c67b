//! The shared call pipeline: a hook at the dispatch seam sees every
//! protocol's calls with the resolved target, every request's outcome
//! (including refusals made before a call exists), can refuse a call in the
//! request's own protocol, and can edit its metadata. A malformed client
//! frame cancels the upstream call instead of half-closing it, and the
//! upstream is sent the time left of the deadline.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::backend::StreamEnding;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::{
    Book, GetShelfRequest, ImportBookRequest, StreamBooksRequest,
};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use protogate::call::Call;
use protogate::gateway::Resources;
use protogate::pipeline::{CallInfo, Hook, Outcome};
use protogate::protocol::envelope;
use protogate::status::GatewayError;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// What the recording hook saw, one line per event.
#[derive(Default)]
struct Recorder {
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Hook for Recorder {
    fn on_call(&self, call: &mut Call, info: &CallInfo<'_>) -> Result<(), GatewayError> {
        self.lines.lock().unwrap().push(format!(
            "call {} {} route={} upstream={}",
            info.protocol.as_str(),
            info.target.method.full_name(),
            info.target.route.as_deref().unwrap_or("-"),
            info.target.upstream,
        ));
        if info.headers.contains_key("x-deny") {
            return Err(GatewayError::Upstream(tonic::Status::permission_denied(
                "denied by the test hook",
            )));
        }
        call.metadata
            .insert("x-echo-hooked", "yes".parse().unwrap());
        Ok(())
    }

    fn on_outcome(&self, o: &Outcome<'_>) {
        self.lines.lock().unwrap().push(format!(
            "outcome {} {} {} {} {:?} in={} out={}",
            o.protocol.as_str(),
            o.http_method,
            o.target.map_or("-", |t| t.method.full_name()),
            o.http_status.as_u16(),
            o.code,
            o.messages_received,
            o.messages_sent,
        ));
    }
}

/// The example backend, and the gateway in front of it with the recorder.
async fn env() -> (common::Running, common::Running, Arc<Recorder>) {
    let (backend, _) = common::start_backend().await;
    let rec = Arc::new(Recorder::default());
    let (gateway, _) = common::start_gateway_with(
        &common::bundled_routes_yaml(),
        Some(&backend.url()),
        Resources::with_hooks(vec![rec.clone()]),
    )
    .await;
    (backend, gateway, rec)
}

/// Waits (bounded) for `rec` to hold `n` lines: outcomes are reported when
/// the answer is complete, which a client may see a moment before.
async fn settled(rec: &Recorder, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if rec.lines().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rec.lines()
}

#[tokio::test]
async fn a_hook_sees_rest_and_grpc_calls_and_every_outcome() {
    let (_backend, gateway, rec) = env().await;
    let http = reqwest::Client::new();

    let r = http
        .get(format!("{}/v1/shelves/1", gateway.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-metadata-x-echo-hooked"], "yes");
    assert_eq!(
        settled(&rec, 2).await,
        [
            "call rest library.v1.LibraryService.GetShelf route=GET /v1/{name=shelves/*} upstream=library",
            "outcome rest GET library.v1.LibraryService.GetShelf 200 Ok in=1 out=1",
        ]
    );

    let mut grpc = LibraryServiceClient::connect(gateway.url()).await.unwrap();
    let resp = grpc
        .get_shelf(GetShelfRequest {
            name: "shelves/2".into(),
        })
        .await
        .unwrap();
    assert_eq!(resp.metadata().get("x-echo-hooked").unwrap(), "yes");
    let mut stream = grpc
        .stream_books(StreamBooksRequest {
            parent: "shelves/1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(
        settled(&rec, 6).await[2..],
        [
            "call grpc library.v1.LibraryService.GetShelf route=- upstream=library",
            "outcome grpc POST library.v1.LibraryService.GetShelf 200 Ok in=1 out=1",
            "call grpc library.v1.LibraryService.StreamBooks route=- upstream=library",
            "outcome grpc POST library.v1.LibraryService.StreamBooks 200 Ok in=1 out=3",
        ]
    );
}

#[tokio::test]
async fn refusals_before_a_call_exists_reach_the_outcome_hook() {
    let (_backend, gateway, rec) = env().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", gateway.url());
    assert_eq!(
        http.get(url("/nowhere")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        http.put(url("/v1/shelves/1"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let bad = http
        .post(url("/v1/shelves"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let form = http
        .post(url("/v1/shelves"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let mut grpc = tonic::client::Grpc::new(
        tonic::transport::Channel::from_shared(gateway.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    grpc.ready().await.unwrap();
    let err = grpc
        .unary::<_, Bytes, _>(
            tonic::Request::new(Bytes::new()),
            http::uri::PathAndQuery::from_static("/no.Such/Method"),
            common::echo::Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    // No call reached dispatch; every request still has its outcome, with
    // the target where the route was resolved before the refusal.
    assert_eq!(
        settled(&rec, 5).await,
        [
            "outcome rest GET - 404 NotFound in=0 out=0",
            "outcome rest PUT - 405 Unimplemented in=0 out=0",
            "outcome rest POST library.v1.LibraryService.CreateShelf 400 InvalidArgument in=0 out=0",
            "outcome rest POST library.v1.LibraryService.CreateShelf 415 InvalidArgument in=0 out=0",
            "outcome grpc POST - 200 Unimplemented in=0 out=0",
        ]
    );
}

#[tokio::test]
async fn a_hook_refuses_calls_in_each_protocols_own_terms() {
    let (backend, gateway, rec) = env().await;
    let r = reqwest::Client::new()
        .get(format!("{}/v1/shelves/1", gateway.url()))
        .header("x-deny", "1")
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(r).await;
    r.assert_error(403, 7);

    let mut grpc = LibraryServiceClient::connect(gateway.url()).await.unwrap();
    let mut req = tonic::Request::new(GetShelfRequest {
        name: "shelves/1".into(),
    });
    req.metadata_mut().insert("x-deny", "1".parse().unwrap());
    let err = grpc.get_shelf(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "denied by the test hook");
    let lines = settled(&rec, 4).await;
    assert_eq!(
        lines[1],
        "outcome rest GET library.v1.LibraryService.GetShelf 403 PermissionDenied in=0 out=0"
    );
    assert_eq!(
        lines[3],
        "outcome grpc POST library.v1.LibraryService.GetShelf 200 PermissionDenied in=0 out=0"
    );
    drop(backend);
}

/// An HTTP/2 gRPC request whose body frames the test writes by hand.
struct RawCall {
    frames: mpsc::Sender<Bytes>,
    response: tokio::task::JoinHandle<(http::HeaderMap, Option<http::HeaderMap>)>,
}

async fn raw_call(gateway: &common::Running, path: &str) -> RawCall {
    let tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let body =
        StreamBody::new(ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let req = http::Request::post(format!("http://{}{path}", gateway.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .unwrap();
    let response = tokio::spawn(async move {
        let resp = sender.send_request(req).await.unwrap();
        let headers = resp.headers().clone();
        let trailers = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .trailers()
            .cloned();
        (headers, trailers)
    });
    RawCall {
        frames: tx,
        response,
    }
}

fn import(title: &str) -> Bytes {
    let req = ImportBookRequest {
        parent: "shelves/3".into(),
        book: Some(Book {
            title: title.into(),
            ..Default::default()
        }),
    };
    envelope::encode(0, &req.encode_to_vec())
}

/// The status of a raw call: in the trailers, or in the headers of a
/// trailers-only reply.
fn status_of(headers: &http::HeaderMap, trailers: &Option<http::HeaderMap>) -> (String, String) {
    let source = trailers
        .as_ref()
        .filter(|t| t.contains_key("grpc-status"))
        .unwrap_or(headers);
    let get = |k: &str| {
        let raw = source
            .get(k)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default();
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned()
    };
    (get("grpc-status"), get("grpc-message"))
}

async fn ending(store: &common::backend::LibraryBackend) -> StreamEnding {
    for _ in 0..500 {
        if let Some(e) = store.stream_endings().pop() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the backend never saw the client stream end");
}

#[tokio::test]
async fn a_malformed_third_frame_cancels_the_upstream_call() {
    let (backend, store) = common::start_backend().await;
    let (gateway, _) = common::start_gateway("", Some(&backend.url())).await;
    let path = "/library.v1.LibraryService/ImportBooks";
    let before = store.stream_endings().len();

    // Flag 0x01 (compressed) without grpc-encoding; the request stays open,
    // so only the gateway can end it.
    let call = raw_call(&gateway, path).await;
    call.frames.send(import("one")).await.unwrap();
    call.frames.send(import("two")).await.unwrap();
    let mut bad = import("three").to_vec();
    bad[0] = 0x01;
    call.frames.send(Bytes::from(bad)).await.unwrap();
    let (headers, trailers) = call.response.await.unwrap();
    let (code, message) = status_of(&headers, &trailers);
    assert_eq!(code, (Code::Internal as i32).to_string(), "{message}");
    assert!(
        message.contains("compressed message without grpc-encoding"),
        "{message}"
    );
    match ending(&store).await {
        StreamEnding::Aborted(..) => {}
        other => panic!("the backend saw {other:?}, not a cancellation"),
    }
    assert_eq!(store.stream_endings().len(), before + 1);
    drop(call.frames);

    // A third frame over the size limit: RESOURCE_EXHAUSTED, and cancelled too.
    let (gateway, _) =
        common::start_gateway("limits: {max_body_bytes: 64}", Some(&backend.url())).await;
    let call = raw_call(&gateway, path).await;
    call.frames.send(import("one")).await.unwrap();
    call.frames.send(import("two")).await.unwrap();
    call.frames.send(import(&"x".repeat(100))).await.unwrap();
    let (headers, trailers) = call.response.await.unwrap();
    let (code, message) = status_of(&headers, &trailers);
    assert_eq!(
        code,
        (Code::ResourceExhausted as i32).to_string(),
        "{message}"
    );
    match ending(&store).await {
        StreamEnding::Aborted(..) => {}
        other => panic!("the backend saw {other:?}, not a cancellation"),
    }

    // The control: the same stream ended cleanly is a clean end.
    let call = raw_call(&gateway, path).await;
    call.frames.send(import("one")).await.unwrap();
    drop(call.frames);
    let (headers, trailers) = call.response.await.unwrap();
    assert_eq!(status_of(&headers, &trailers).0, "0");
    assert_eq!(ending(&store).await, StreamEnding::Finished(1));
}

#[tokio::test]
async fn the_upstream_is_sent_the_time_that_is_left() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A fake upstream that records the grpc-timeout it is sent.
    let (tx, mut seen) = mpsc::unbounded_channel::<http::HeaderMap>();
    let app = axum::Router::new().fallback(move |uri: http::Uri, headers: http::HeaderMap| {
        let tx = tx.clone();
        async move {
            // The gateway's health checks are not the call under test.
            if !uri.path().starts_with("/grpc.health.v1.") {
                let _ = tx.send(headers);
            }
            [("content-type", "application/grpc"), ("grpc-status", "5")]
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (gateway, _) = common::start_gateway("", Some(&upstream)).await;

    // The body arrives 600 ms after the headers: the deadline runs from arrival.
    let body = r#"{"theme": "slow"}"#;
    let mut tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let head = format!(
        "POST /v1/shelves HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ngrpc-timeout: 5S\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    tcp.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    let headers = seen.recv().await.unwrap();
    let sent = protogate::protocol::metadata::parse_grpc_timeout(
        headers["grpc-timeout"].to_str().unwrap(),
    )
    .unwrap();
    assert!(
        sent <= Duration::from_millis(4400) && sent > Duration::ZERO,
        "the upstream was sent {sent:?} of a 5 s deadline 600 ms after arrival"
    );
}
