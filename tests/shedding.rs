//! Load shedding (`shedding:`), through the real gateway over real HTTP in
//! front of a real tonic backend on loopback whose handlers block until the
//! test lets them go: calls over the in-flight limit are refused at once
//! (503 / UNAVAILABLE, also over native gRPC) while the admitted ones are
//! still held, and complete once released; slots come back when clients
//! go away mid-call; streams are limited per process (503) and per client
//! address (429); repeated shedding leaves nothing behind (the slot gauges
//! return to 0, the per-client table empties).

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use common::backend::LibraryBackend;
use common::backend::pb::library::v1::GetShelfRequest;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::backend::pb::library::v1::library_service_server::LibraryServiceServer;
use common::{Reply, Running};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio_stream::wrappers::TcpListenerStream;

/// Generous: only ever a bound, never an expected time.
const LIMIT: Duration = Duration::from_secs(10);
const SHELF: &str = "/v1/shelves/1";
const STREAM: &str = "/v1/shelves/1/books:stream";

/// The process-wide limits' gauges are shared by every gateway in this
/// binary: the tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The library service with every GetShelf held until the test adds a
/// permit to `gate`; `entered` counts the calls that reached the backend.
#[derive(Clone)]
struct Gated {
    inner: LibraryServiceServer<LibraryBackend>,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
    /// Capacity mode (the benchmark): a GetShelf holds a permit of `gate`
    /// for this long and gives it back, so the backend serves at most
    /// `permits / service_time` calls a second.
    service_time: Option<Duration>,
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
        let service_time = self.service_time;
        Box::pin(async move {
            if req.uri().path().ends_with("/GetShelf") {
                entered.fetch_add(1, Ordering::SeqCst);
                if let Ok(p) = gate.acquire().await {
                    match service_time {
                        Some(t) => tokio::time::sleep(t).await,
                        None => p.forget(),
                    }
                }
            }
            tower::Service::call(&mut inner, req).await
        })
    }
}

/// The gated backend, and a gateway in front of it calling it `upstream`
/// with `shedding` as its `shedding:` section.
struct Env {
    _backend: Running,
    gateway: Running,
    gw: Arc<protogate::gateway::Gateway>,
    store: LibraryBackend,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
    upstream: &'static str,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    async fn start(upstream: &'static str, shedding: &str) -> Env {
        Env::with_capacity(upstream, shedding, None).await
    }

    /// `capacity`: the backend serves that many GetShelf calls at once,
    /// each taking the given time (else each is held until released).
    async fn with_capacity(
        upstream: &'static str,
        shedding: &str,
        capacity: Option<(usize, Duration)>,
    ) -> Env {
        let turn = SERIAL.lock().await;
        protogate::observe::metrics::install().unwrap();
        let store = LibraryBackend::with_sample_data();
        let gate = Arc::new(Semaphore::new(capacity.map_or(0, |c| c.0)));
        let entered = Arc::new(AtomicUsize::new(0));
        let svc = Gated {
            inner: LibraryServiceServer::new(store.clone()),
            gate: gate.clone(),
            entered: entered.clone(),
            service_time: capacity.map(|c| c.1),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        let backend = Running::new(addr, tx);
        let yaml = format!(
            "upstreams:\n  {upstream}:\n    url: {}\nshedding: {shedding}\n",
            backend.url()
        );
        let (gateway, gw) = common::start_gateway(&yaml, None).await;
        Env {
            _backend: backend,
            gateway,
            gw,
            store,
            gate,
            entered,
            upstream,
            _turn: turn,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.gateway.url(), path)
    }

    /// Waits until `n` GetShelf calls have reached the backend.
    async fn entered(&self, n: usize) {
        tokio::time::timeout(LIMIT, async {
            while self.entered.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the calls reach the backend");
    }

    /// `protogate_shed_slots_in_use` of `limit` (for this upstream when the
    /// limit is per upstream).
    fn in_use(&self, limit: &str) -> f64 {
        let upstream = if limit == "max_in_flight_per_upstream" {
            self.upstream
        } else {
            ""
        };
        metric(
            "protogate_shed_slots_in_use",
            &[("limit", limit), ("upstream", upstream)],
        )
    }

    /// Waits until the gauge of `limit` reads `n`.
    async fn settles(&self, limit: &str, n: f64) {
        let settled = tokio::time::timeout(LIMIT, async {
            while self.in_use(limit) != n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "{limit}: {} slots in use, expected {n}",
            self.in_use(limit)
        );
    }
}

/// The sum of the series of `name` with these labels (a label not given
/// is any value; one given as `""` must be absent) in the rendered metrics.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = protogate::observe::metrics::render().unwrap_or_default();
    let wanted: HashMap<&str, &str> = labels.iter().copied().collect();
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            continue;
        }
        let got: HashMap<&str, &str> = rest
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        let matches = wanted
            .iter()
            .all(|(k, v)| got.get(k).copied().unwrap_or("") == *v);
        if matches {
            sum += value.parse::<f64>().unwrap();
        }
    }
    sum
}

fn get(http: &reqwest::Client, url: String) -> impl Future<Output = Reply> + Send + 'static {
    let sent = http.get(url).send();
    async move { Reply::from(tokio::time::timeout(LIMIT, sent).await.unwrap().unwrap()).await }
}

#[tokio::test]
async fn over_the_in_flight_limit_calls_are_refused_at_once_then_all_complete() {
    let env = Env::start(
        "lib_full",
        "{max_in_flight_per_upstream: 2, queue_timeout: 20ms}",
    )
    .await;
    let http = reqwest::Client::new();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(get(&http, env.url(SHELF))))
        .collect();
    env.entered(2).await;
    assert_eq!(env.in_use("max_in_flight_per_upstream"), 2.0);

    // The third is refused while the first two are still held.
    let refused = get(&http, env.url(SHELF)).await;
    let body = refused.assert_error(503, 14);
    assert_eq!(
        body["message"],
        "overloaded: upstream lib_full: 2 calls in flight (shedding.max_in_flight_per_upstream)"
    );
    assert!(held.iter().all(|h| !h.is_finished()));
    assert_eq!(env.entered.load(Ordering::SeqCst), 2, "never sent upstream");

    // Native gRPC: UNAVAILABLE.
    let mut grpc = LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap();
    let status = grpc
        .get_shelf(GetShelfRequest {
            name: "shelves/1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("shedding.max_in_flight_per_upstream"),
        "{status:?}"
    );

    // Released: the held calls complete, and the limit is free again.
    env.gate.add_permits(100);
    for h in held {
        let reply = tokio::time::timeout(LIMIT, h).await.unwrap().unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    env.settles("max_in_flight_per_upstream", 0.0).await;
    assert_eq!(get(&http, env.url(SHELF)).await.status, 200);
    let ok = grpc
        .get_shelf(GetShelfRequest {
            name: "shelves/1".into(),
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    assert!(metric("protogate_shed_total", &[("upstream", "lib_full")]) >= 2.0);
}

#[tokio::test]
async fn the_queue_timeout_lets_a_call_wait_for_a_slot() {
    let env = Env::start(
        "lib_queue",
        "{max_in_flight_per_upstream: 1, queue_timeout: 5s}",
    )
    .await;
    let http = reqwest::Client::new();
    let first = tokio::spawn(get(&http, env.url(SHELF)));
    env.entered(1).await;
    // The second waits in the queue (not refused) …
    let second = tokio::spawn(get(&http, env.url(SHELF)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!second.is_finished());
    assert_eq!(env.entered.load(Ordering::SeqCst), 1);
    // … and goes through when the first ends.
    env.gate.add_permits(2);
    for h in [first, second] {
        let reply = tokio::time::timeout(LIMIT, h).await.unwrap().unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    env.settles("max_in_flight_per_upstream", 0.0).await;
}

#[tokio::test]
async fn slots_come_back_when_clients_go_away_mid_call() {
    let env = Env::start(
        "lib_gone",
        "{max_in_flight_per_upstream: 1, max_in_flight: 1, max_streams: 1, queue_timeout: 0s}",
    )
    .await;
    // A unary call held by the backend; its client goes away.
    let client = reqwest::Client::new();
    let call = tokio::spawn(get(&client, env.url(SHELF)));
    env.entered(1).await;
    assert_eq!(env.in_use("max_in_flight_per_upstream"), 1.0);
    let http = reqwest::Client::new();
    get(&http, env.url(SHELF)).await.assert_error(503, 14);
    call.abort();
    let _ = call.await;
    drop(client);
    env.settles("max_in_flight_per_upstream", 0.0).await;
    env.gate.add_permits(100);
    assert_eq!(get(&http, env.url(SHELF)).await.status, 200);

    // A stream, held open after its first message; its client goes away.
    let gate = env.store.gate_streams();
    let stream_client = reqwest::Client::new();
    let resp = stream_client.get(env.url(STREAM)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    assert!(body.next().await.is_some(), "the first message");
    assert_eq!(env.in_use("max_streams"), 1.0);
    get(&http, env.url(STREAM)).await.assert_error(503, 14);
    drop(body);
    drop(stream_client);
    env.settles("max_streams", 0.0).await;
    gate.add_permits(100);
    let again = get(&http, env.url(STREAM)).await;
    assert_eq!(again.status, 200, "{}", again.text());
    env.settles("max_streams", 0.0).await;
    env.settles("max_in_flight", 0.0).await;
}

/// A client whose connections come from `ip`.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn streams_are_limited_per_process_and_per_client() {
    let env = Env::start("lib_streams", "{max_streams: 3, max_streams_per_client: 2}").await;
    let gate = env.store.gate_streams();
    let (a, b) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let mut open = Vec::new();
    for _ in 0..2 {
        let resp = a.get(env.url(STREAM)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        open.push(resp.bytes_stream());
    }
    // A third from the same address: its own limit, 429.
    let body = get(&a, env.url(STREAM)).await.assert_error(429, 8);
    assert_eq!(
        body["message"],
        "overloaded: client 127.0.0.1: 2 streams open (shedding.max_streams_per_client)"
    );
    // Another address gets the process's last stream, then 503.
    let resp = b.get(env.url(STREAM)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    open.push(resp.bytes_stream());
    let body = get(&b, env.url(STREAM)).await.assert_error(503, 14);
    assert_eq!(
        body["message"],
        "overloaded: 3 streams open in the gateway (shedding.max_streams)"
    );
    assert_eq!(env.in_use("max_streams"), 3.0);
    assert_eq!(env.gw.shedding.clients_with_streams(), 2);
    // Streams never take unary calls' slots.
    env.gate.add_permits(100);
    assert_eq!(get(&b, env.url(SHELF)).await.status, 200);

    // Every stream ends: nothing is left counted.
    gate.add_permits(100);
    for mut s in open {
        while let Some(chunk) = tokio::time::timeout(LIMIT, s.next()).await.unwrap() {
            chunk.unwrap();
        }
    }
    env.settles("max_streams", 0.0).await;
    assert_eq!(env.gw.shedding.clients_with_streams(), 0);
    let again = get(&a, env.url(STREAM)).await;
    assert_eq!(again.status, 200, "{}", again.text());
}

#[tokio::test]
async fn repeated_shedding_leaves_nothing_behind() {
    let env = Env::start(
        "lib_repeat",
        "{max_in_flight_per_upstream: 1, max_streams: 1, max_streams_per_client: 1, queue_timeout: 0s}",
    )
    .await;
    let http = reqwest::Client::new();
    let held = tokio::spawn(get(&http, env.url(SHELF)));
    env.entered(1).await;
    let gate = env.store.gate_streams();
    let resp = http.get(env.url(STREAM)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let stream = resp.bytes_stream();
    // 300 refusals of each kind, 20 at a time.
    for _ in 0..15 {
        let refusals = (0..20).flat_map(|_| {
            [
                tokio::spawn(get(&http, env.url(SHELF))),
                tokio::spawn(get(&http, env.url(STREAM))),
            ]
        });
        for r in futures_util::future::join_all(refusals).await {
            let status = r.unwrap().status;
            assert!(status == 503 || status == 429, "{status}");
        }
    }
    assert_eq!(
        env.entered.load(Ordering::SeqCst),
        1,
        "none reached the backend"
    );
    assert_eq!(env.in_use("max_in_flight_per_upstream"), 1.0);
    assert_eq!(env.in_use("max_streams"), 1.0);
    assert_eq!(env.gw.shedding.clients_with_streams(), 1);
    assert!(metric("protogate_shed_total", &[("upstream", "lib_repeat")]) >= 600.0);

    drop(stream);
    env.gate.add_permits(100);
    gate.add_permits(100);
    assert_eq!(
        tokio::time::timeout(LIMIT, held)
            .await
            .unwrap()
            .unwrap()
            .status,
        200
    );
    env.settles("max_in_flight_per_upstream", 0.0).await;
    env.settles("max_streams", 0.0).await;
    assert_eq!(env.gw.shedding.clients_with_streams(), 0);
}

#[tokio::test]
async fn a_reload_keeps_streams_counted_and_resizes_the_limit() {
    let turn = SERIAL.lock().await;
    protogate::observe::metrics::install().unwrap();
    let (backend, store) = common::start_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    let write = |max: usize| {
        let yaml = format!(
            "upstreams:\n  lib_reload:\n    url: {}\nshedding: {{max_streams: {max}}}\n",
            backend.url()
        );
        std::fs::write(&routes, yaml).unwrap();
    };
    write(2);
    let settings = protogate::gateway::Settings {
        descriptors: vec![protogate::descriptors::DescriptorSource::Path(
            common::descriptors_dir(),
        )],
        routes: vec![routes.clone()],
        watch: Some(false),
        ..Default::default()
    };
    let gw = common::start_live(settings, protogate::gateway::Resources::default()).await;
    let gate = store.gate_streams();
    let http = reqwest::Client::new();
    let mut open = Vec::new();
    for _ in 0..2 {
        let resp = http
            .get(format!("{}{STREAM}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        open.push(resp.bytes_stream());
    }
    let in_use = || metric("protogate_shed_slots_in_use", &[("limit", "max_streams")]);
    assert_eq!(in_use(), 2.0);
    // A reload with the same limit keeps both streams counted: still full.
    assert!(gw.live.reload("test").await.ok);
    let refused = get(&http, format!("{}{STREAM}", gw.url)).await;
    refused.assert_error(503, 14);
    // Grown to 3: one more; shrunk to 1: none until two have ended.
    write(3);
    assert!(gw.live.reload("test").await.ok);
    let resp = http
        .get(format!("{}{STREAM}", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    open.push(resp.bytes_stream());
    write(1);
    assert!(gw.live.reload("test").await.ok);
    open.truncate(1);
    tokio::time::timeout(LIMIT, async {
        while in_use() != 1.0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    get(&http, format!("{}{STREAM}", gw.url))
        .await
        .assert_error(503, 14);
    open.clear();
    tokio::time::timeout(LIMIT, async {
        while in_use() != 0.0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    gate.add_permits(100);
    let again = get(&http, format!("{}{STREAM}", gw.url)).await;
    assert_eq!(again.status, 200, "{}", again.text());
    drop(turn);
}

/// Resident memory of this process (backend, gateway and load generator
/// together), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Offers twice the upstream's capacity (open loop: requests arrive at a
/// fixed rate whatever the answers) with shedding on and off, and prints
/// the error rate, the latency percentiles and the memory. A report, not
/// a test: `cargo test --release --test shedding -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_twice_the_upstream_capacity() {
    // The backend: 8 calls at once, 20 ms each: 400 calls a second.
    let capacity = (8, Duration::from_millis(20));
    let rate = 800u64;
    let secs = 5u64;
    for (name, shedding) in [
        ("off", "{}"),
        (
            "on",
            "{max_in_flight_per_upstream: 16, queue_timeout: 50ms}",
        ),
    ] {
        let env = Env::with_capacity("lib_bench", shedding, Some(capacity)).await;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .build()
            .unwrap();
        let rss_before = rss_kib();
        let started = tokio::time::Instant::now();
        let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let mut calls = Vec::new();
        let mut peak_rss = rss_before;
        for i in 0..rate * secs {
            every.tick().await;
            let url = env.url(SHELF);
            let http = http.clone();
            calls.push(tokio::spawn(async move {
                let t = tokio::time::Instant::now();
                let status = match http.get(url).send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                (status, t.elapsed())
            }));
            if i % 200 == 0 {
                peak_rss = peak_rss.max(rss_kib());
            }
        }
        let offered = started.elapsed();
        let mut results = Vec::new();
        for c in calls {
            results.push(c.await.unwrap());
            peak_rss = peak_rss.max(rss_kib());
        }
        let total = results.len();
        let ok: Vec<Duration> = results
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, d)| *d)
            .collect();
        let mut all: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
        all.sort();
        let mut ok_sorted = ok.clone();
        ok_sorted.sort();
        let pct = |v: &[Duration], p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let errors = total - ok.len();
        println!(
            "shedding {name}: {total} calls offered over {:.1}s ({rate}/s, capacity {}/s): {} ok, {} refused or failed ({:.1}%); all: p50 {:.0} ms, p99 {:.0} ms; successes: p50 {:.0} ms, p99 {:.0} ms; whole run: {:.1}s; RSS +{} KiB at peak (process: backend, gateway, generator)",
            offered.as_secs_f64(),
            capacity.0 as u64 * 1000 / capacity.1.as_millis() as u64,
            ok.len(),
            errors,
            errors as f64 * 100.0 / total as f64,
            pct(&all, 0.5),
            pct(&all, 0.99),
            pct(&ok_sorted, 0.5),
            pct(&ok_sorted, 0.99),
            started.elapsed().as_secs_f64(),
            peak_rss.saturating_sub(rss_before),
        );
        drop(env);
    }
}
