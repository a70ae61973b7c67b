//! The drain of the real binary on SIGTERM, seen from its clients: readiness
//! turns 503 at once while requests are still served; a unary call in
//! flight completes; after `--drain-delay` new connections are refused;
//! after `--drain-grace` every call still open ends with UNAVAILABLE "the
//! gateway is shutting down" in its protocol's terminal form (the REST
//! NDJSON `@error` record and SSE `error` event, native gRPC's status,
//! gRPC-Web's trailer frame, Connect's end-stream message, the WebSocket's
//! status frame and close code, a unary call's 503), streams whose backend
//! keeps sending included; and the process exits 0. A second signal cuts
//! the drain short. The backend is the example library server (a real
//! tonic server) with some unary calls held. Every wait polls with a
//! bound; no sleep stands for an expected time.

mod common;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::backend::LibraryBackend;
use common::backend::pb::library::v1::StreamBooksRequest;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::library_service_server::LibraryServiceServer;
use common::process::{KillOnDrop, address_after};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use prost::Message as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_tungstenite::tungstenite::Message;

/// The bound on every wait (never an expected time).
const PATIENCE: Duration = Duration::from_secs(20);
/// A stream that sends one book, then waits an hour for the next.
const IDLE: &str = "/v1/shelves/1/books:stream?interval=3600s";
/// A stream whose backend keeps sending, a book every 20 ms.
const BUSY: &str = "/v1/shelves/1/books:stream?interval=0.02s&repeat=1000000";
/// The terminal status every open call gets at the end of the grace period.
const SHUTTING_DOWN: &str = "the gateway is shutting down";

/// The library service with every GetShelf held until the test adds a
/// permit to `gate`, and every GetShelfStats held for good.
#[derive(Clone)]
struct Gated {
    inner: LibraryServiceServer<LibraryBackend>,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

impl tonic::server::NamedService for Gated {
    const NAME: &'static str = "library.v1.LibraryService";
}

impl tower::Service<http::Request<tonic::body::Body>> for Gated {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <LibraryServiceServer<LibraryBackend> as tower::Service<
            http::Request<tonic::body::Body>,
        >>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        let (gate, entered) = (self.gate.clone(), self.entered.clone());
        Box::pin(async move {
            let path = req.uri().path();
            if path.ends_with("/GetShelf") {
                entered.fetch_add(1, Ordering::SeqCst);
                if let Ok(p) = gate.acquire().await {
                    p.forget();
                }
            } else if path.ends_with("/GetShelfStats") {
                entered.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            tower::Service::call(&mut inner, req).await
        })
    }
}

/// The gated backend on loopback.
struct Backend {
    url: String,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl Backend {
    async fn start() -> Backend {
        let gate = Arc::new(Semaphore::new(0));
        let entered = Arc::new(AtomicUsize::new(0));
        let svc = Gated {
            inner: LibraryServiceServer::new(LibraryBackend::with_sample_data()),
            gate: gate.clone(),
            entered: entered.clone(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        Backend {
            url,
            gate,
            entered,
            _stop: tx,
        }
    }

    /// Waits until `n` held calls have reached the backend.
    async fn entered(&self, n: usize) {
        until("the held calls reach the backend", || {
            self.entered.load(Ordering::SeqCst) >= n
        })
        .await;
    }
}

/// Polls `done` every 10 ms, failing after [`PATIENCE`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `protogate serve` in front of `upstream` with its main and admin
/// listeners on ephemeral ports (read from its log), and `drain`'s flags.
fn serve_binary(upstream: &str, drain: &[&str]) -> (KillOnDrop, SocketAddr, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(&routes, "health: {interval: 50ms, timeout: 1s}\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .args(["--log-format", "json", "serve"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--watch", "false", "--upstream", upstream])
        .arg("--descriptors")
        .arg(common::descriptors_dir())
        .arg("--routes")
        .arg(&routes)
        .args(drain)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    let mut lines = BufReader::new(stderr).lines();
    let after = |line: &str, marker: &str| -> Option<SocketAddr> {
        address_after(line, marker)?.parse().ok()
    };
    let (mut main, mut admin) = (None, None);
    while main.is_none() || admin.is_none() {
        let line = lines.next().expect("protogate exited early").unwrap();
        admin = admin.or_else(|| after(&line, "admin endpoints on http://"));
        main = main.or_else(|| after(&line, "listening on http://"));
    }
    // Keep reading stderr (the child never blocks on a full pipe); shown
    // when a test fails.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("protogate: {line}");
        }
    });
    (child, main.unwrap(), admin.unwrap())
}

fn signal(child: &KillOnDrop, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a signal it handles.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Polls `/readyz` until it answers `status`.
async fn until_readyz(admin: SocketAddr, status: u16) -> Value {
    let started = Instant::now();
    loop {
        let r = reqwest::get(format!("http://{admin}/readyz"))
            .await
            .unwrap();
        if r.status().as_u16() == status {
            return r.json().await.unwrap();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "/readyz never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) for the process to exit.
async fn exit_status(child: &mut KillOnDrop) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            return s;
        }
        assert!(started.elapsed() < PATIENCE, "the gateway never exited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A response body read as it arrives.
struct Body {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    buf: BytesMut,
}

impl Body {
    fn of(r: reqwest::Response) -> Body {
        Body {
            chunks: r.bytes_stream().boxed(),
            buf: BytesMut::new(),
        }
    }

    /// Reads until `enough` holds of what has arrived.
    async fn until(&mut self, enough: impl Fn(&[u8]) -> bool) {
        while !enough(&self.buf) {
            let chunk = tokio::time::timeout(PATIENCE, self.chunks.next())
                .await
                .expect("no data within the bound")
                .expect("the body ended early")
                .unwrap();
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Reads to the end, in a task; the whole body.
    fn rest(mut self) -> JoinHandle<Bytes> {
        tokio::spawn(async move {
            while let Some(chunk) = tokio::time::timeout(PATIENCE, self.chunks.next())
                .await
                .expect("the body never ended")
            {
                self.buf.extend_from_slice(&chunk.unwrap());
            }
            self.buf.freeze()
        })
    }
}

/// A REST stream in `accept`'s format, read until its first record.
async fn rest_stream(url: &str, path: &str, accept: &str, end: &'static [u8]) -> Body {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = Body::of(r);
    body.until(|b| b.windows(end.len()).any(|w| w == end)).await;
    body
}

/// One length-prefixed frame (gRPC-Web, Connect).
fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.put_u8(flags);
    b.put_u32(u32::try_from(payload.len()).unwrap());
    b.put_slice(payload);
    b.freeze()
}

/// The complete frames of `body` as (flags, payload).
fn envelopes(mut body: &[u8]) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if body.len() < 5 + len {
            break;
        }
        out.push((body[0], Bytes::copy_from_slice(&body[5..5 + len])));
        body.advance(5 + len);
    }
    out
}

/// A framed server stream (`content_type`: gRPC-Web or Connect) of
/// StreamBooks on an idle shelf, read until its first message.
async fn framed_stream(url: &str, content_type: &str, payload: &[u8]) -> Body {
    let r = reqwest::Client::new()
        .post(format!("{url}/library.v1.LibraryService/StreamBooks"))
        .header("content-type", content_type)
        .header("connect-protocol-version", "1")
        .body(envelope(0, payload))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = Body::of(r);
    body.until(|b| !envelopes(b).is_empty()).await;
    body
}

fn idle_request() -> StreamBooksRequest {
    StreamBooksRequest {
        parent: "shelves/1".into(),
        interval: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        repeat: 0,
    }
}

/// A native gRPC StreamBooks whose backend sends a book every 20 ms: read
/// in a task until its status.
async fn grpc_busy_stream(url: &str) -> JoinHandle<tonic::Status> {
    let mut client = LibraryServiceClient::connect(url.to_string())
        .await
        .unwrap();
    let req = StreamBooksRequest {
        interval: Some(prost_types::Duration {
            seconds: 0,
            nanos: 20_000_000,
        }),
        repeat: 1_000_000,
        ..idle_request()
    };
    let mut stream = client.stream_books(req).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_some());
    tokio::spawn(async move {
        loop {
            let next = tokio::time::timeout(PATIENCE, stream.message()).await;
            match next.expect("the stream never ended") {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended OK"),
                Err(status) => return status,
            }
        }
    })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket on the idle stream, read until its first book.
async fn websocket(addr: SocketAddr) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{IDLE}"))
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
    ws
}

/// The WebSocket's last text frame and its close code, read in a task.
fn websocket_end(mut ws: Ws) -> JoinHandle<(Value, u16)> {
    tokio::spawn(async move {
        let mut last = Value::Null;
        loop {
            let next = tokio::time::timeout(PATIENCE, ws.next()).await;
            match next.expect("the WebSocket never closed") {
                Some(Ok(Message::Text(t))) => last = serde_json::from_str(&t).unwrap(),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(0, |f| u16::from(f.code));
                    let _ = ws.close(None).await;
                    return (last, code);
                }
                Some(Ok(_)) => {}
                other => panic!("the WebSocket ended without a close frame: {other:?}"),
            }
        }
    })
}

/// The last NDJSON record of `body`.
fn last_line(body: &[u8]) -> Value {
    let text = std::str::from_utf8(body).unwrap();
    let line = text.lines().rfind(|l| !l.is_empty()).unwrap();
    serde_json::from_str(line).unwrap()
}

/// The last SSE event of `body`: its name and data.
fn last_event(body: &[u8]) -> (String, Value) {
    let text = std::str::from_utf8(body).unwrap();
    let event = text.split("\n\n").filter(|e| !e.is_empty()).last().unwrap();
    let field = |name: &str| {
        event
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let data = serde_json::from_str(&field("data:")).unwrap();
    (field("event:"), data)
}

/// The google.rpc.Status JSON of UNAVAILABLE "the gateway is shutting down".
fn assert_shutting_down(status: &Value, what: &str) {
    let expected = serde_json::json!({"code": 14, "message": SHUTTING_DOWN, "details": []});
    assert_eq!(status, &expected, "{what}");
}

/// Every protocol's open calls and the drain's phases, in order, from the
/// clients' side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_seen_from_clients() {
    let backend = Backend::start().await;
    let (mut child, addr, admin) = serve_binary(
        &backend.url,
        &["--drain-delay", "2s", "--drain-grace", "3s"],
    );
    let url = format!("http://{addr}");
    until_readyz(admin, 200).await;

    // Open calls: streams idle and busy in every protocol, and two unary
    // calls held by the backend (one to be released, one never).
    let ndjson = rest_stream(&url, IDLE, "application/x-ndjson", b"\n").await;
    let sse = rest_stream(&url, BUSY, "text/event-stream", b"\n\n").await;
    let grpc_busy = grpc_busy_stream(&url).await;
    let request = idle_request().encode_to_vec();
    let grpc_web = framed_stream(&url, "application/grpc-web+proto", &request).await;
    let connect_json = br#"{"parent": "shelves/1", "interval": "3600s"}"#;
    let connect = framed_stream(&url, "application/connect+json", connect_json).await;
    let ws = websocket(addr).await;
    let get = |path: &str| reqwest::Client::new().get(format!("{url}{path}")).send();
    let released = tokio::spawn(get("/v1/shelves/1"));
    let held = tokio::spawn(get("/v1/shelves/1/stats"));
    backend.entered(2).await;
    let (ndjson, sse, grpc_web, connect) =
        (ndjson.rest(), sse.rest(), grpc_web.rest(), connect.rest());
    let ws = websocket_end(ws);

    signal(&child, libc::SIGTERM);

    // Readiness turns off at once; requests are still served, on a new
    // connection too, and the unary call in flight completes.
    let body = until_readyz(admin, 503).await;
    assert_eq!(body["draining"], true, "{body}");
    let fresh = get("/v1/shelves").await.unwrap();
    assert_eq!(fresh.status(), 200);
    backend.gate.add_permits(1);
    let done = released.await.unwrap().unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(done.json::<Value>().await.unwrap()["name"], "shelves/1");

    // After the delay the listener is closed: new connections are refused.
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(started.elapsed() < PATIENCE, "the listener never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // After the grace period, every call still open gets its terminal record.
    let held = held.await.unwrap().unwrap();
    assert_eq!(held.status(), 503);
    assert_shutting_down(&held.json().await.unwrap(), "unary");
    let ndjson = ndjson.await.unwrap();
    assert_shutting_down(&last_line(&ndjson)["@error"], "NDJSON");
    let (event, data) = last_event(&sse.await.unwrap());
    assert_eq!(event, "error");
    assert_shutting_down(&data, "SSE");
    let status = grpc_busy.await.unwrap();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), SHUTTING_DOWN);
    let frames = envelopes(&grpc_web.await.unwrap());
    let (flags, trailers) = frames.last().unwrap();
    assert_eq!(*flags, 0x80, "gRPC-Web ends with its trailer frame");
    let trailers = String::from_utf8_lossy(trailers).to_lowercase();
    assert!(trailers.contains("grpc-status:14\r\n"), "{trailers}");
    assert!(trailers.contains("shutting"), "{trailers}");
    let frames = envelopes(&connect.await.unwrap());
    let (flags, end) = frames.last().unwrap();
    assert_eq!(*flags, 0x02, "Connect ends with its end-stream message");
    let end: Value = serde_json::from_slice(end).unwrap();
    assert_eq!(end["error"]["code"], "unavailable", "{end}");
    assert_eq!(end["error"]["message"], SHUTTING_DOWN, "{end}");
    let (status, close) = ws.await.unwrap();
    assert_shutting_down(&status, "WebSocket");
    assert_eq!(close, 4014);

    // And the process exits 0.
    let status = exit_status(&mut child).await;
    assert!(status.success(), "{status}");
}

/// A second signal skips what is left of the delay and the grace period:
/// the open stream ends at once and the process exits 0, long before the
/// minute each would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_cuts_the_drain_short() {
    let backend = Backend::start().await;
    let (mut child, addr, admin) = serve_binary(
        &backend.url,
        &["--drain-delay", "60s", "--drain-grace", "60s"],
    );
    let url = format!("http://{addr}");
    until_readyz(admin, 200).await;
    let ndjson = rest_stream(&url, IDLE, "application/x-ndjson", b"\n")
        .await
        .rest();

    signal(&child, libc::SIGTERM);
    until_readyz(admin, 503).await;
    signal(&child, libc::SIGTERM);

    assert_shutting_down(&last_line(&ndjson.await.unwrap())["@error"], "NDJSON");
    let status = exit_status(&mut child).await;
    assert!(status.success(), "{status}");
}
