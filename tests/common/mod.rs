//! Shared harness for integration tests: a real tonic backend (the example
//! library server) on an ephemeral loopback port, and the real gateway in
//! front of it, spoken to over real HTTP with reqwest.
#![allow(dead_code)]

#[path = "../../examples/library_server/backend.rs"]
pub mod backend;
pub mod certs;
pub mod process;
pub mod raw_http;

use std::net::SocketAddr;
use std::sync::Arc;

use backend::LibraryBackend;
use backend::pb::library::v1::library_service_server::LibraryServiceServer;
use protogate::config::Config;
use protogate::gateway::{Gateway, Resources, Settings};
use protogate::live::Live;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

/// The descriptors directory of the bundled example.
pub fn descriptors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("descriptors")
}

/// Loads the bundled descriptors.
pub fn pool() -> prost_reflect::DescriptorPool {
    protogate::descriptors::load(&[descriptors_dir()])
        .expect("bundled descriptors load")
        .pool
}

/// A running server; stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Running {
    /// A server at `addr` that stops when `stop` fires.
    pub fn new(addr: SocketAddr, stop: oneshot::Sender<()>) -> Running {
        Running {
            addr,
            stop: Some(stop),
        }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until its port is free again.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves the example backend on `listener`. `fail` makes a tonic interceptor
/// answer any call whose metadata has `x-fail-code: N` with status N, message
/// `x-fail-message` (default "injected") and, when `x-fail-detail` is set, a
/// google.rpc.ErrorInfo detail whose reason is that value.
pub async fn serve_backend(listener: TcpListener, backend: LibraryBackend) -> Running {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let svc = LibraryServiceServer::with_interceptor(backend, inject_failure);
    let incoming = TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(svc, incoming, async {
                let _ = rx.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(tx),
    }
}

/// Like [`serve_backend`], also serving `grpc.health.v1.Health` (SERVING
/// for `""` and the library service); the reporter flips it.
pub async fn serve_backend_with_health(
    listener: TcpListener,
    backend: LibraryBackend,
) -> (Running, tonic_health::server::HealthReporter) {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let svc = LibraryServiceServer::with_interceptor(backend, inject_failure);
    let (reporter, health) = backend::health_service().await;
    let incoming = TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
    });
    (
        Running {
            addr,
            stop: Some(tx),
        },
        reporter,
    )
}

#[allow(clippy::result_large_err)]
fn inject_failure(req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let md = req.metadata();
    let Some(code) = md.get("x-fail-code").and_then(|v| v.to_str().ok()) else {
        return Ok(req);
    };
    let code = tonic::Code::from_i32(code.parse().unwrap_or(2));
    let message = md
        .get("x-fail-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("injected")
        .to_string();
    let mut status = match md.get("x-fail-detail").and_then(|v| v.to_str().ok()) {
        Some(reason) => {
            use prost::Message;
            let info = backend::pb::google::rpc::ErrorInfo {
                reason: reason.to_string(),
                domain: "tests.protogate".into(),
                metadata: Default::default(),
            };
            let details = backend::pb::google::rpc::Status {
                code: code as i32,
                message: message.clone(),
                details: vec![prost_types::Any {
                    type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                    value: info.encode_to_vec(),
                }],
            };
            tonic::Status::with_details(code, message, details.encode_to_vec().into())
        }
        None => tonic::Status::new(code, message),
    };
    status
        .metadata_mut()
        .insert("x-failure", "injected".parse().unwrap());
    Err(status)
}

/// Starts the example backend with sample data on 127.0.0.1:0.
pub async fn start_backend() -> (Running, LibraryBackend) {
    let backend = LibraryBackend::with_sample_data();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (serve_backend(listener, backend.clone()).await, backend)
}

/// Starts the gateway on 127.0.0.1:0 with the bundled descriptors, the given
/// routes.yaml text and upstream.
pub async fn start_gateway(routes_yaml: &str, upstream: Option<&str>) -> (Running, Arc<Gateway>) {
    start_gateway_with(routes_yaml, upstream, Resources::default()).await
}

/// Like [`start_gateway`], built from `resources` (hooks, for example).
pub async fn start_gateway_with(
    routes_yaml: &str,
    upstream: Option<&str>,
    resources: Resources,
) -> (Running, Arc<Gateway>) {
    let config = Config::parse(routes_yaml).expect("test routes.yaml parses");
    let resources = Arc::new(resources);
    let gw = Gateway::build_with(pool(), config, upstream, &resources).expect("gateway builds");
    let live = Live::fixed_with(gw, resources);
    let gw = live.current();
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _handle) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    (
        Running {
            addr,
            stop: Some(tx),
        },
        gw,
    )
}

/// A gateway loaded from files (reloadable), serving on an ephemeral port,
/// with its admin endpoints on another; stops when dropped.
pub struct LiveGateway {
    pub live: Arc<Live>,
    /// `http://addr` of the main listener.
    pub url: String,
    /// `http://addr` of the admin listener.
    pub admin: String,
    _stop: Vec<oneshot::Sender<()>>,
}

/// Loads the gateway from `settings` and serves it (see [`LiveGateway`]).
pub async fn start_live(settings: Settings, resources: Resources) -> LiveGateway {
    let live = Live::load(settings, Arc::new(resources))
        .await
        .expect("the gateway loads");
    let (tx1, rx1) = oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn(live.clone(), "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx1.await;
    })
    .await
    .unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", l.local_addr().unwrap());
    let (tx2, rx2) = oneshot::channel::<()>();
    tokio::spawn(protogate::server::serve_admin(l, live.clone(), async {
        let _ = rx2.await;
    }));
    LiveGateway {
        live,
        url: format!("http://{addr}"),
        admin,
        _stop: vec![tx1, tx2],
    }
}

/// The bundled routes.yaml, as shipped.
pub fn bundled_routes_yaml() -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("routes.yaml"))
        .unwrap()
}

/// The bundled routes.yaml with its library upstream at `url` and `extra`
/// lines under it (its `tls:`, `endpoints:`, …).
pub fn routes_with_upstream(url: &str, extra: &str) -> String {
    let text = bundled_routes_yaml();
    let old = "    url: http://127.0.0.1:50051\n";
    assert!(
        text.contains(old),
        "the bundled routes.yaml names its upstream"
    );
    text.replace(old, &format!("    url: {url}\n{extra}"))
}

/// A backend with sample data and a gateway in front of it, configured with
/// `routes_yaml` (the upstream is given on the "command line").
pub struct Env {
    pub backend: Running,
    pub store: LibraryBackend,
    pub gateway: Running,
    pub gw: Arc<Gateway>,
    pub http: reqwest::Client,
}

impl Env {
    /// With the bundled routes.yaml.
    pub async fn start() -> Env {
        Env::with_routes(&bundled_routes_yaml()).await
    }

    /// With custom routes.yaml text.
    pub async fn with_routes(routes_yaml: &str) -> Env {
        let (backend, store) = start_backend().await;
        let (gateway, gw) = start_gateway(routes_yaml, Some(&backend.url())).await;
        Env {
            backend,
            store,
            gateway,
            gw,
            http: reqwest::Client::new(),
        }
    }

    /// Absolute URL of a gateway path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.gateway.url(), path)
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// A request with a JSON body (content-type application/json).
    pub async fn send_json(&self, method: &str, path: &str, body: &str) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        Reply::from(
            self.http
                .request(m, self.url(path))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

/// A collected HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Reply {
        Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    /// The body as JSON (panics with the body text when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the JSON error shape and returns the body.
    pub fn assert_error(&self, status: u16, code: i64) -> serde_json::Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        let j = self.json();
        assert_eq!(j["code"], code, "body: {j}");
        assert!(
            j["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {j}"
        );
        assert!(j["details"].is_array(), "body: {j}");
        j
    }
}

/// A real tonic server whose one service (`hardening.v1.ProbeService`, of
/// tests/fixtures/hardening) answers every unary method with the request
/// message it was sent, as raw bytes: a backend for test descriptors that
/// have no generated code.
pub async fn start_echo() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let incoming = TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(echo::EchoAll)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
    });
    Running::new(addr, tx)
}

pub mod echo {
    //! The echo service behind [`super::start_echo`].
    use std::convert::Infallible;
    use std::task::{Context, Poll};

    use bytes::{Buf, BufMut, Bytes};
    use futures_util::future::{BoxFuture, Ready, ready};
    use tonic::body::Body;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    /// Echoes every unary call of its service.
    #[derive(Clone)]
    pub struct EchoAll;

    impl tonic::server::NamedService for EchoAll {
        const NAME: &'static str = "hardening.v1.ProbeService";
    }

    impl tower::Service<http::Request<Body>> for EchoAll {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<Body>) -> Self::Future {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(Raw);
                Ok(grpc.unary(Echo, req).await)
            })
        }
    }

    struct Echo;

    impl tonic::server::UnaryService<Bytes> for Echo {
        type Response = Bytes;
        type Future = Ready<Result<tonic::Response<Bytes>, tonic::Status>>;
        fn call(&mut self, req: tonic::Request<Bytes>) -> Self::Future {
            ready(Ok(tonic::Response::new(req.into_inner())))
        }
    }

    /// Passes encoded messages through untouched, both ways.
    #[derive(Clone, Copy, Default)]
    pub struct Raw;

    impl Codec for Raw {
        type Encode = Bytes;
        type Decode = Bytes;
        type Encoder = Raw;
        type Decoder = Raw;
        fn encoder(&mut self) -> Raw {
            Raw
        }
        fn decoder(&mut self) -> Raw {
            Raw
        }
    }

    impl Encoder for Raw {
        type Item = Bytes;
        type Error = tonic::Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put(item);
            Ok(())
        }
    }

    impl Decoder for Raw {
        type Item = Bytes;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
            Ok(Some(src.copy_to_bytes(src.remaining())))
        }
    }
}

/// The real `protogate` binary, serving on an ephemeral port; killed when dropped.
pub struct Binary {
    pub child: std::process::Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// Starts `protogate serve --listen 127.0.0.1:0 --watch false <args>` and
    /// waits for its "listening on" line.
    pub fn serve(args: &[&std::ffi::OsStr]) -> Binary {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_protogate"))
            .args(["serve", "--listen", "127.0.0.1:0", "--watch", "false"])
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the gateway exited").unwrap();
            if let Some(i) = line.find("listening on http://") {
                break line[i + 20..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('"')
                    .to_string();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Binary { child, addr }
    }

    /// A `/proc/<pid>/status` figure in bytes (`VmRSS:`, `VmHWM:`).
    pub fn memory(&self, key: &str) -> usize {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// Resets the peak RSS (`VmHWM`) to the current RSS (Linux `clear_refs`).
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}
