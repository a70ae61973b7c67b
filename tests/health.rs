//! Health: `/readyz` against a real tonic backend whose health the test
//! flips, stops and restarts; the gateway's own `grpc.health.v1.Health`
//! through a real tonic-health client; reloads; mock mode; and the drain of
//! the real binary on SIGTERM. Every wait polls with a bound, never a fixed
//! sleep.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::backend::LibraryBackend;
use common::process::{KillOnDrop as Serving, address_after};
use common::{LiveGateway, Running, serve_backend, serve_backend_with_health, start_live};
use protogate::descriptors::DescriptorSource;
use protogate::gateway::{Resources, Settings};
use serde_json::Value;
use tokio::net::TcpListener;
use tonic_health::ServingStatus as Set;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

/// Probes every 50 ms: the tests see changes quickly.
const FAST: &str = "health: {interval: 50ms, timeout: 1s}\n";
/// The bound on every wait.
const PATIENCE: Duration = Duration::from_secs(15);

fn routes(upstream: &str, extra: &str) -> String {
    format!("upstreams: {{library: {{url: '{upstream}'}}}}\n{FAST}{extra}")
}

/// The gateway loaded from a routes.yaml in `dir` (reloadable), with its
/// admin listener.
async fn gateway(dir: &Path, yaml: &str) -> LiveGateway {
    let file = dir.join("routes.yaml");
    std::fs::write(&file, yaml).unwrap();
    let settings = Settings {
        descriptors: vec![DescriptorSource::Path(common::descriptors_dir())],
        routes: vec![file],
        watch: Some(false),
        ..Settings::default()
    };
    start_live(settings, Resources::default()).await
}

async fn reload(gw: &LiveGateway, dir: &Path, yaml: &str) {
    std::fs::write(dir.join("routes.yaml"), yaml).unwrap();
    let report = gw.live.reload("test").await;
    assert!(report.ok, "{report:?}");
}

async fn backend_with_health() -> (Running, HealthReporter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_backend_with_health(listener, LibraryBackend::with_sample_data()).await
}

async fn readyz(admin: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{admin}/readyz")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Polls `/readyz` until it answers `status`; returns that body.
async fn until_readyz(admin: &str, status: u16, what: &str) -> Value {
    let started = Instant::now();
    loop {
        let (s, body) = readyz(admin).await;
        if s == status {
            return body;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: /readyz never answered {status}; last: {s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn health_client(url: &str) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> ServingStatus {
    let r = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap();
    ServingStatus::try_from(r.into_inner().status).unwrap()
}

/// The next message of a Watch stream (bounded); `None` when it ended.
async fn next(
    stream: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> Option<ServingStatus> {
    let msg = tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("a Watch message in time")
        .unwrap();
    msg.map(|m| ServingStatus::try_from(m.status).unwrap())
}

#[tokio::test]
async fn ready_with_a_serving_backend() {
    let (backend, _health) = backend_with_health().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&backend.url(), "")).await;
    // The first check is waited for: no 503 just because the gateway is new.
    let (status, body) = readyz(&gw.admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["upstreams"]["library"]["status"], "SERVING", "{body}");
    assert_eq!(body["upstreams"]["library"]["url"], backend.url());
    let r = reqwest::get(format!("{}/healthz", gw.admin)).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn not_ready_naming_the_upstream_whose_health_says_not_serving() {
    let (backend, health) = backend_with_health().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&backend.url(), "")).await;
    until_readyz(&gw.admin, 200, "start").await;

    health.set_service_status("", Set::NotServing).await;
    let body = until_readyz(&gw.admin, 503, "NOT_SERVING").await;
    assert_eq!(body["code"], 14, "{body}");
    assert_eq!(body["details"], serde_json::json!([]));
    let message = body["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "not ready: upstream library ({}): NOT_SERVING",
            backend.url()
        )
    );
    assert_eq!(body["upstreams"]["library"]["ready"], false);
    // Calls still go through: readiness is advice to load balancers.
    let r = reqwest::get(format!("{}/v1/shelves/1", gw.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    health.set_service_status("", Set::Serving).await;
    until_readyz(&gw.admin, 200, "SERVING again").await;
}

#[tokio::test]
async fn readiness_flips_when_the_backend_stops_and_starts() {
    let (mut backend, _health) = backend_with_health().await;
    let addr = backend.addr;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&backend.url(), "")).await;
    until_readyz(&gw.admin, 200, "start").await;

    backend.stop();
    let body = until_readyz(&gw.admin, 503, "backend stopped").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("not ready: upstream library (http://{addr}): "))
            && (message.contains("unreachable") || message.contains("timeout")),
        "{message}"
    );

    // The same port again, as a restarted process would.
    let (_backend, _health) =
        serve_backend_with_health(bind(addr).await, LibraryBackend::with_sample_data()).await;
    let body = until_readyz(&gw.admin, 200, "backend restarted").await;
    assert_eq!(body["upstreams"]["library"]["status"], "SERVING");
}

#[tokio::test]
async fn the_gateway_answers_grpc_health_check_and_watch() {
    let (backend, health) = backend_with_health().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&backend.url(), "")).await;
    let mut client = health_client(&gw.url).await;

    assert_eq!(check(&mut client, "").await, ServingStatus::Serving);
    assert_eq!(
        check(&mut client, "library.v1.LibraryService").await,
        ServingStatus::Serving
    );
    let unknown = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let mut watch = client
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut watch).await, Some(ServingStatus::Serving));
    let mut unknown = client
        .watch(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next(&mut unknown).await,
        Some(ServingStatus::ServiceUnknown)
    );

    // The backend turns NOT_SERVING: the gateway and the service it serves follow.
    health.set_service_status("", Set::NotServing).await;
    assert_eq!(next(&mut watch).await, Some(ServingStatus::NotServing));
    assert_eq!(check(&mut client, "").await, ServingStatus::NotServing);
    assert_eq!(
        check(&mut client, "library.v1.LibraryService").await,
        ServingStatus::NotServing
    );
    health.set_service_status("", Set::Serving).await;
    assert_eq!(next(&mut watch).await, Some(ServingStatus::Serving));

    // The listener stopping ends the stream, NOT_SERVING last: a graceful
    // shutdown never waits on it.
    drop(gw);
    assert_eq!(next(&mut watch).await, Some(ServingStatus::NotServing));
    assert_eq!(next(&mut watch).await, None);
}

#[tokio::test]
async fn an_upstream_without_health_service_is_ready_unless_required() {
    // serve_backend has no health service: it answers UNIMPLEMENTED.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = serve_backend(listener, LibraryBackend::with_sample_data()).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&backend.url(), "")).await;
    let body = until_readyz(&gw.admin, 200, "UNIMPLEMENTED counts as ready").await;
    assert_eq!(
        body["upstreams"]["library"]["status"],
        "no health service (UNIMPLEMENTED)"
    );

    // A reload that requires the health service applies at once.
    let strict = format!(
        "upstreams: {{library: {{url: '{}'}}}}\nhealth: {{interval: 50ms, unimplemented: not_ready}}\n",
        backend.url()
    );
    reload(&gw, dir.path(), &strict).await;
    let body = until_readyz(&gw.admin, 503, "UNIMPLEMENTED required").await;
    assert_eq!(
        body["message"],
        format!(
            "not ready: upstream library ({}): no health service (UNIMPLEMENTED)",
            backend.url()
        )
    );
}

#[tokio::test]
async fn probers_follow_reloads() {
    let (backend, _health) = backend_with_health().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&backend.url(), "")).await;
    until_readyz(&gw.admin, 200, "start").await;

    // The upstream moves to a port nothing listens on.
    let dead = format!("http://{}", closed_port().await);
    reload(&gw, dir.path(), &routes(&dead, "")).await;
    let body = until_readyz(&gw.admin, 503, "moved to a dead port").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "not ready: upstream library ({dead}): unreachable"
        )),
        "{message}"
    );
    assert_eq!(body["upstreams"].as_object().unwrap().len(), 1, "{body}");

    // And back: the new prober answers, the dead one is gone.
    reload(&gw, dir.path(), &routes(&backend.url(), "")).await;
    let body = until_readyz(&gw.admin, 200, "moved back").await;
    assert_eq!(body["upstreams"]["library"]["url"], backend.url());

    // `interval: 0s` turns checks off: readiness is the descriptors alone.
    let off = format!("upstreams: {{library: {{url: '{dead}'}}}}\nhealth: {{interval: 0s}}\n");
    reload(&gw, dir.path(), &off).await;
    let body = until_readyz(&gw.admin, 200, "checks off").await;
    assert_eq!(body["upstreams"], serde_json::json!({}));
}

#[tokio::test]
async fn mock_mode_is_ready_once_descriptors_load() {
    // The upstream is configured but every service is mocked: not checked.
    let dead = format!("http://{}", closed_port().await);
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), &routes(&dead, "mock: {enabled: true}\n")).await;
    let body = until_readyz(&gw.admin, 200, "mock").await;
    assert_eq!(body["upstreams"], serde_json::json!({}), "{body}");
    let mut client = health_client(&gw.url).await;
    assert_eq!(check(&mut client, "").await, ServingStatus::Serving);
    assert_eq!(
        check(&mut client, "library.v1.LibraryService").await,
        ServingStatus::Serving
    );
}

/// The real binary: on SIGTERM readiness turns off while requests are
/// still served, then, after `--drain-delay`, the listener closes.
#[tokio::test]
async fn drain_turns_readiness_off_before_the_listener_stops() {
    let (backend, _health) = backend_with_health().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.yaml");
    std::fs::write(&file, FAST).unwrap();
    let (mut child, addr, admin) = serve_binary(&[
        "--upstream",
        &backend.url(),
        "--routes",
        file.to_str().unwrap(),
        "--descriptors",
        common::descriptors_dir().to_str().unwrap(),
        "--drain-delay",
        "3s",
    ]);
    let (url, admin) = (format!("http://{addr}"), format!("http://{admin}"));
    until_readyz(&admin, 200, "start").await;
    let mut client = health_client(&url).await;
    let mut watch = client
        .watch(HealthCheckRequest { service: "".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut watch).await, Some(ServingStatus::Serving));

    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a signal it handles.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    // Not ready at once, on both the admin endpoint and gRPC health...
    let body = until_readyz(&admin, 503, "draining").await;
    assert_eq!(body["draining"], true, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("draining"),
        "{body}"
    );
    assert_eq!(next(&mut watch).await, Some(ServingStatus::NotServing));
    // ...while requests are still served, on the existing connection and new ones.
    assert_eq!(check(&mut client, "").await, ServingStatus::NotServing);
    let r = reqwest::Client::new()
        .get(format!("{url}/v1/shelves/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Then the Watch stream ends, the process exits and the port is closed.
    assert_eq!(next(&mut watch).await, None);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < PATIENCE, "the gateway never exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A loopback address nothing listens on.
async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn bind(addr: SocketAddr) -> TcpListener {
    // The stopped server may hold the port for a moment.
    let started = Instant::now();
    loop {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        assert!(started.elapsed() < PATIENCE, "cannot bind {addr} again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `protogate serve` with its main and admin listeners on ephemeral
/// ports, read from its log.
fn serve_binary(args: &[&str]) -> (Serving, SocketAddr, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .args(["--log-format", "json", "serve"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--watch", "false"])
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Serving(child);
    let mut lines = BufReader::new(stderr).lines();
    let after = |line: &str, marker: &str| -> Option<SocketAddr> {
        address_after(line, marker)?.parse().ok()
    };
    let (mut main, mut admin) = (None, None);
    while main.is_none() || admin.is_none() {
        let line = lines
            .next()
            .expect("protogate exited before listening")
            .unwrap();
        admin = admin.or_else(|| after(&line, "admin endpoints on http://"));
        main = main.or_else(|| after(&line, "listening on http://"));
    }
    // Keep reading stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (child, main.unwrap(), admin.unwrap())
}
