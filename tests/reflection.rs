//! Descriptors by gRPC server reflection, against the example backend with
//! tonic-reflection: loading (annotations honoured), the v1alpha fallback,
//! per-upstream `reflection: true`, startup while the server is down
//! (readiness says what is missing; picked up by the background retry), and
//! a backend restart that adds a method, picked up on reload.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::backend::{self, LibraryBackend};
use protogate::descriptors::DescriptorSource;
use protogate::gateway::{Resources, Settings};
use protogate::live;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A server on `addr` until the returned sender fires (or drops).
fn serve(listener: TcpListener, router: tonic::service::Routes) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel::<()>();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_routes(router)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await;
    });
    tx
}

/// The example backend with sample data and reflection (v1 and v1alpha).
async fn example_server(listener: TcpListener) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(backend::serve(
        listener,
        LibraryBackend::with_sample_data(),
        async {
            let _ = rx.await;
        },
    ));
    tx
}

async fn bind(addr: &str) -> TcpListener {
    // A restarted server takes the port its predecessor just left.
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr}");
}

async fn gateway(settings: Settings) -> common::LiveGateway {
    common::start_live(settings, Resources::default()).await
}

fn reflect(addr: SocketAddr) -> Settings {
    Settings {
        descriptors: vec![DescriptorSource::parse(&format!("reflect://{addr}"))],
        ..Settings::default()
    }
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn loads_services_and_annotations_by_reflection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = example_server(listener).await;
    let gw = gateway(reflect(addr)).await;

    // A route from the google.api.http annotation, served by the reflected
    // server itself (no upstream configured).
    let (status, body) = get(&format!("{}/v1/shelves/1/books/1", gw.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["title"], "The Left Hand of Darkness");
    let snapshot = gw.live.current();
    let route = snapshot
        .routes()
        .iter()
        .find(|r| r.key == "GET /v1/{name=shelves/*/books/*}")
        .expect("annotation route");
    assert_eq!(route.source.to_string(), "annotation");
    assert!(
        snapshot
            .routes()
            .iter()
            .all(|r| !r.method.full_name().starts_with("grpc.reflection")),
        "the reflection service itself is not routed"
    );
    let (status, ready) = get(&format!("{}/readyz", gw.admin)).await;
    assert_eq!(status, 200, "{ready}");
}

#[tokio::test]
async fn falls_back_to_v1alpha_and_follows_upstreams_with_reflection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Only the older protocol, as some servers still offer.
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(LibraryBackend::with_sample_data().into_service())
        .add_service(backend::reflection_v1alpha());
    let _server = serve(listener, routes.routes());

    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("routes.yaml");
    std::fs::write(
        &yaml,
        format!("upstreams:\n  library:\n    url: http://{addr}\n    reflection: true\n"),
    )
    .unwrap();
    let gw = gateway(Settings {
        descriptors: vec![],
        routes: vec![yaml],
        ..Settings::default()
    })
    .await;
    let (status, body) = get(&format!("{}/v1/shelves/2", gw.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["theme"], "Popular science");
    assert_eq!(
        gw.live.current().reflection_urls,
        [format!("http://{addr}")]
    );
}

#[tokio::test]
async fn starts_while_the_server_is_down_and_picks_it_up() {
    // Reserve a port, then leave it closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway(reflect(addr)).await;
    live::follow_reflection(&gw.live);
    let (status, ready) = get(&format!("{}/readyz", gw.admin)).await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains(&format!("reflection from http://{addr}")),
        "{ready}"
    );
    assert_eq!(get(&format!("{}/v1/shelves/1", gw.url)).await.0, 404);

    let _server = example_server(bind(&addr.to_string()).await).await;
    let mut waited = Duration::ZERO;
    while get(&format!("{}/readyz", gw.admin)).await.0 != 200 {
        assert!(
            waited < Duration::from_secs(15),
            "never picked up the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    let (status, body) = get(&format!("{}/v1/shelves/1", gw.url)).await;
    assert_eq!(status, 200, "{body}");
}

/// library.proto with one more method on LibraryService, compiled here.
fn library_v2() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("descriptors");
    let source = std::fs::read_to_string(root.join("library/v1/library.proto")).unwrap();
    let added = source.replacen(
        "service LibraryService {",
        "service LibraryService {\n  rpc CountBooks(GetShelfRequest) returns (GetShelfStatsResponse) {\n    option (google.api.http) = {get: \"/v1/{name=shelves/*}:count\"};\n  }\n",
        1,
    );
    assert_ne!(added, source);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("library/v1")).unwrap();
    std::fs::write(dir.path().join("library/v1/library.proto"), added).unwrap();
    let builtin = root.join("../src/descriptors/builtin");
    let mut compiler =
        protox::Compiler::new([dir.path(), root.as_path(), builtin.as_path()]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("library/v1/library.proto").unwrap();
    compiler.encode_file_descriptor_set()
}

/// The restarted backend: the example service, plus CountBooks answered by
/// hand (tonic has no generated code for it), and reflection of v2.
fn backend_v2() -> tonic::service::Routes {
    use common::backend::pb::library::v1::{GetShelfStatsResponse, ShelfStats};
    use prost::Message;
    let fds: &'static [u8] = Box::leak(library_v2().into_boxed_slice());
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fds)
        .build_v1()
        .unwrap();
    let library = LibraryBackend::with_sample_data().into_service();
    let count = tower::service_fn(move |req: http::Request<tonic::body::Body>| {
        let mut library = library.clone();
        async move {
            use tower::Service;
            if req.uri().path() != "/library.v1.LibraryService/CountBooks" {
                return library.call(req).await;
            }
            let answer = GetShelfStatsResponse {
                stats: Some(ShelfStats {
                    book_count: 42,
                    ..Default::default()
                }),
                compute_time: None,
            };
            let mut body = vec![0u8];
            body.extend_from_slice(&(answer.encoded_len() as u32).to_be_bytes());
            body.extend_from_slice(&answer.encode_to_vec());
            let resp = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(tonic::body::Body::new(WithTrailers(
                    Some(Bytes::from(body)),
                    false,
                )))
                .unwrap();
            Ok(resp)
        }
    });
    tonic::service::Routes::new(reflection).add_service(Named(count))
}

/// The library service's name on a hand-written service.
#[derive(Clone)]
struct Named<S>(S);

impl<S> tonic::server::NamedService for Named<S> {
    const NAME: &'static str = "library.v1.LibraryService";
}

impl<S, R> tower::Service<R> for Named<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: R) -> S::Future {
        self.0.call(req)
    }
}

/// One data frame, then `grpc-status: 0` trailers.
struct WithTrailers(Option<Bytes>, bool);

impl http_body::Body for WithTrailers {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.0.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        if std::mem::replace(&mut self.1, true) {
            return std::task::Poll::Ready(None);
        }
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", http::HeaderValue::from_static("0"));
        std::task::Poll::Ready(Some(Ok(http_body::Frame::trailers(t))))
    }
}

#[tokio::test]
async fn a_backend_restart_that_adds_a_method_is_picked_up_on_reload() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop_v1 = example_server(listener).await;
    let gw = gateway(reflect(addr)).await;
    // Before: `:count` is no verb, so GetShelf reads it as part of the name.
    assert_eq!(get(&format!("{}/v1/shelves/1:count", gw.url)).await.0, 400);

    let _ = stop_v1.send(());
    let _v2 = serve(bind(&addr.to_string()).await, backend_v2());
    let report: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_protogate/reload", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["changes"]["routes_added"],
        serde_json::json!([
            "GET /v1/{name=shelves/*}:count → library.v1.LibraryService.CountBooks"
        ]),
        "{report}"
    );
    let (status, body) = get(&format!("{}/v1/shelves/1:count", gw.url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stats"]["bookCount"], "42");
    // The methods it had still work, on the restarted server.
    assert_eq!(get(&format!("{}/v1/shelves/1", gw.url)).await.0, 200);
}
