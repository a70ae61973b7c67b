//! Several endpoints per upstream: the real gateway in front of three real
//! library backends on distinct loopback addresses (127.0.0.1-3). Calls
//! spread over them (least request and round robin); one killed mid-load
//! costs only the calls in flight on it (clean 503s), is ejected and comes
//! back; a name re-resolved through a test resolver adds and removes
//! endpoints; active health checks take a NOT_SERVING endpoint out.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backend::LibraryBackend;
use futures_util::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use protogate::config::Config;
use protogate::gateway::{Gateway, Resources};
use protogate::live::Live;
use protogate::upstream::resolve::Resolve;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

const BOOK: &str = "/v1/shelves/2/books/3";

// ---------------------------------------------------------------- backends

/// A library backend on one loopback address, counting the library calls
/// and the connections it answers; `kill` drops every connection at once.
struct Backend {
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    health: tonic_health::server::HealthReporter,
    tasks: Option<JoinSet<()>>,
}

impl Backend {
    async fn start(addr: SocketAddr) -> Backend {
        let listener = bind(addr).await;
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let mut routes = tonic::service::Routes::builder();
        routes
            .add_service(LibraryBackend::with_sample_data().into_service())
            .add_service(health_service);
        let routes = routes.routes();
        let mut backend = Backend {
            addr: listener.local_addr().unwrap(),
            calls: Arc::default(),
            connections: Arc::default(),
            health,
            tasks: Some(JoinSet::new()),
        };
        let (calls, connections) = (backend.calls.clone(), backend.connections.clone());
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let accept = async move {
            let _conns = conns.clone();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tcp.set_nodelay(true).unwrap();
                connections.fetch_add(1, Ordering::SeqCst);
                let (calls, routes) = (calls.clone(), routes.clone());
                let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    if req.uri().path().starts_with("/library.") {
                        calls.fetch_add(1, Ordering::SeqCst);
                    }
                    let mut routes = routes.clone();
                    async move { tower::Service::call(&mut routes, req).await }
                });
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(svc));
                // Connection tasks live in the set: killing drops them all.
                conns.lock().unwrap().spawn(async move {
                    let _ = conn.await;
                });
            }
        };
        backend.tasks.as_mut().unwrap().spawn(accept);
        backend
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Drops the listener and every connection at once, as a crash would.
    fn kill(&mut self) {
        self.tasks.take();
    }
}

async fn bind(addr: SocketAddr) -> TcpListener {
    // A restarted backend takes the address its predecessor just left.
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr}");
}

/// Three backends on 127.0.0.1, .2 and .3, on one port (so that one name
/// resolving to the three addresses reaches them all).
async fn three() -> Vec<Backend> {
    let first = Backend::start("127.0.0.1:0".parse().unwrap()).await;
    let port = first.addr.port();
    let mut all = vec![first];
    for host in ["127.0.0.2", "127.0.0.3"] {
        all.push(Backend::start(format!("{host}:{port}").parse().unwrap()).await);
    }
    all
}

// ---------------------------------------------------------------- the gateway

/// Names to addresses, changeable while the gateway runs.
#[derive(Default)]
struct TestResolver(Mutex<HashMap<String, Vec<SocketAddr>>>);

impl TestResolver {
    fn set(&self, host: &str, addrs: &[SocketAddr]) {
        self.0.lock().unwrap().insert(host.into(), addrs.to_vec());
    }
}

impl Resolve for TestResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let found = self.0.lock().unwrap().get(host).cloned();
        Box::pin(async move {
            let addrs = found.ok_or_else(|| std::io::Error::other("no such name"))?;
            Ok(addrs
                .into_iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect())
        })
    }
}

use common::routes_with_upstream as routes;

/// The gateway with `resolver`; stops when the sender drops.
async fn gateway(yaml: &str, resolver: Arc<TestResolver>) -> (String, oneshot::Sender<()>) {
    let config = Config::parse(yaml).unwrap();
    let resources = Arc::new(Resources::default().with_resolver(resolver));
    let gw = Gateway::build_with(common::pool(), config, None, &resources).unwrap();
    let live = Live::fixed_with(gw, resources);
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, _) = protogate::server::spawn(live, "127.0.0.1:0".parse().unwrap(), async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    (format!("http://{addr}"), tx)
}

fn static_endpoints(backends: &[Backend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("'{}'", b.addr)).collect();
    format!("    endpoints: [{}]\n", list.join(", "))
}

/// `n` GETs of a book, `concurrency` at a time; the statuses seen.
async fn load(gw: &str, n: usize, concurrency: usize) -> Vec<u16> {
    let http = reqwest::Client::new();
    let url = format!("{gw}{BOOK}");
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        set.spawn(async move {
            let mut seen = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < n as u64 {
                seen.push(http.get(&url).send().await.unwrap().status().as_u16());
            }
            seen
        });
    }
    set.join_all().await.concat()
}

/// Polls `cond` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_spreads_calls_over_three_endpoints() {
    let backends = three().await;
    let extra = format!(
        "{}    pool: {{streams_per_connection: 2}}\n",
        static_endpoints(&backends)
    );
    let (gw, _stop) = gateway(&routes("http://library.test:1", &extra), Arc::default()).await;

    let statuses = load(&gw, 600, 12).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let calls: Vec<u64> = backends.iter().map(Backend::calls).collect();
    assert_eq!(calls.iter().sum::<u64>(), 600);
    assert!(calls.iter().all(|c| *c >= 100), "uneven spread: {calls:?}");
    // 12 calls at once, 2 per connection: the pools grew past one each.
    let connections: u64 = backends
        .iter()
        .map(|b| b.connections.load(Ordering::SeqCst))
        .sum();
    assert!(connections > 3, "{connections} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_takes_each_endpoint_in_turn() {
    let backends = three().await;
    let extra = format!("{}    balance: round_robin\n", static_endpoints(&backends));
    let (gw, _stop) = gateway(&routes("http://library.test:1", &extra), Arc::default()).await;

    let statuses = load(&gw, 300, 1).await;
    assert!(statuses.iter().all(|s| *s == 200));
    let calls: Vec<u64> = backends.iter().map(Backend::calls).collect();
    assert_eq!(calls, [100, 100, 100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_endpoint_costs_only_its_calls_in_flight_and_comes_back() {
    let mut backends = three().await;
    let extra = format!(
        "{}    ejection: {{consecutive_failures: 1, base_time: 300ms}}\n",
        static_endpoints(&backends)
    );
    let (gw, _stop) = gateway(&routes("http://library.test:1", &extra), Arc::default()).await;

    // The load: 8 clients until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let mut clients = JoinSet::new();
    for _ in 0..8 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = format!("{gw}{BOOK}");
        clients.spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let r = http.get(&url).send().await.unwrap();
                if r.status() == 200 {
                    ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    failed.lock().unwrap().push((status, body));
                }
            }
        });
    }
    let served = |n: u64| {
        let ok = ok.clone();
        move || ok.load(Ordering::SeqCst) >= n
    };
    eventually("the first answers", served(100)).await;
    let killed = backends[1].addr;
    backends[1].kill();
    let at_kill = ok.load(Ordering::SeqCst);
    eventually("answers after the kill", served(at_kill + 300)).await;
    let (others_before, failures_after_kill) = (
        backends[0].calls() + backends[2].calls(),
        failed.lock().unwrap().len(),
    );

    // Back on the same address: once its ejection ends, calls reach it again.
    let back = Backend::start(killed).await;
    eventually("calls to the restarted endpoint", || back.calls() > 10).await;
    stop.store(true, Ordering::SeqCst);
    clients.join_all().await;

    let failed = failed.lock().unwrap();
    assert!(
        failed.len() <= 8,
        "more failures than calls in flight: {failed:?}"
    );
    assert_eq!(
        failed.len(),
        failures_after_kill,
        "failures after the kill window: {failed:?}"
    );
    for (status, body) in failed.iter() {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["code"], 14, "{body}");
    }
    assert!(backends[0].calls() + backends[2].calls() > others_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_resolved_again_and_endpoints_follow() {
    let backends = three().await;
    let port = backends[0].addr.port();
    let resolver = Arc::new(TestResolver::default());
    resolver.set("library.test", &[backends[0].addr]);
    let extra = "    dns_refresh: 50ms\n";
    let url = format!("http://library.test:{port}");
    let (gw, _stop) = gateway(&routes(&url, extra), resolver.clone()).await;

    assert!(load(&gw, 30, 3).await.iter().all(|s| *s == 200));
    assert_eq!(backends[0].calls(), 30);

    // Scaled up: the new pods get calls.
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    resolver.set("library.test", &addrs);
    let (gw2, b) = (gw.clone(), &backends);
    eventually_async("calls to the new endpoints", || async {
        load(&gw2, 30, 3).await;
        b[1].calls() > 0 && b[2].calls() > 0
    })
    .await;

    // Scaled down: the removed pod gets no new call.
    resolver.set("library.test", &addrs[1..]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = backends[0].calls();
    assert!(load(&gw, 60, 3).await.iter().all(|s| *s == 200));
    assert_eq!(backends[0].calls(), before);

    // The name stops resolving: the last endpoints keep serving.
    resolver.0.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(load(&gw, 30, 3).await.iter().all(|s| *s == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_name_is_a_clean_503() {
    let (gw, _stop) = gateway(&routes("http://nowhere.test:1", ""), Arc::default()).await;
    let r = reqwest::get(format!("{gw}{BOOK}")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("cannot resolve nowhere.test"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_a_not_serving_endpoint_out_and_back() {
    let backends = three().await;
    let extra = format!(
        "{}    health_check: {{interval: 50ms, timeout: 1s}}\n",
        static_endpoints(&backends)
    );
    let (gw, _stop) = gateway(&routes("http://library.test:1", &extra), Arc::default()).await;
    assert!(load(&gw, 60, 3).await.iter().all(|s| *s == 200));
    assert!(backends[2].calls() > 0);

    backends[2]
        .health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = backends[2].calls();
    assert!(load(&gw, 60, 3).await.iter().all(|s| *s == 200));
    assert_eq!(
        backends[2].calls(),
        before,
        "a NOT_SERVING endpoint got calls"
    );

    backends[2]
        .health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let (gw2, b) = (gw.clone(), &backends);
    eventually_async("calls to the endpoint serving again", || async {
        load(&gw2, 30, 3).await;
        b[2].calls() > before
    })
    .await;
}

/// Runs `step` every 50 ms until it returns true, for up to 10 s.
async fn eventually_async<F, Fut>(what: &str, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if step().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
