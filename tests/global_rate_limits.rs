//! Global rate limits (`rate_limit_service:`) against a rate limit service
//! written here with tonic from Envoy's published protocol
//! (`envoy.service.ratelimit.v3.RateLimitService`), on loopback, in front
//! of the real example backend through the real gateway over real HTTP.
//!
//! The test service counts hits per descriptor (its entries joined) with
//! a limit of [`LIMIT`] and answers OVER_LIMIT past it, so two gateways
//! sharing it share the count as replicas would. It can also be slow or
//! fail, for the failure modes; it records every request it sees.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::backend::pb::library::v1::GetShelfRequest;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::{Env, Reply, Running};
use protogate::limits::rls::rate_limit_response::{DescriptorStatus, RateLimit, rate_limit::Unit};
use protogate::limits::rls::rate_limit_service_server::{RateLimitService, RateLimitServiceServer};
use protogate::limits::rls::{RateLimitRequest, RateLimitResponse, ResponseCode};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Hits the test service admits per descriptor.
const LIMIT: u32 = 3;
const SHELF: &str = "/v1/shelves/1";

/// How the test service behaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Count,
    /// Answers after this long.
    Slow(Duration),
    /// Answers INTERNAL.
    Fail,
    /// Answers OK to everything, recording nothing (the bench).
    Allow,
}

#[derive(Clone)]
struct TestRls {
    mode: Mode,
    hits: Arc<Mutex<HashMap<String, u32>>>,
    seen: Arc<Mutex<Vec<RateLimitRequest>>>,
}

#[tonic::async_trait]
impl RateLimitService for TestRls {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let request = request.into_inner();
        if self.mode == Mode::Allow {
            return Ok(tonic::Response::new(RateLimitResponse {
                overall_code: ResponseCode::Ok as i32,
                statuses: vec![],
            }));
        }
        self.seen.lock().unwrap().push(request.clone());
        match self.mode {
            Mode::Allow => {}
            Mode::Fail => return Err(tonic::Status::internal("redis is down")),
            Mode::Slow(d) => tokio::time::sleep(d).await,
            Mode::Count => {}
        }
        let mut hits = self.hits.lock().unwrap();
        let statuses: Vec<DescriptorStatus> = request
            .descriptors
            .iter()
            .map(|d| {
                let key: Vec<String> = d
                    .entries
                    .iter()
                    .map(|e| format!("{}={}", e.key, e.value))
                    .collect();
                let count = hits.entry(key.join(",")).or_default();
                *count += 1;
                let over = *count > LIMIT;
                DescriptorStatus {
                    code: if over {
                        ResponseCode::OverLimit
                    } else {
                        ResponseCode::Ok
                    } as i32,
                    current_limit: Some(RateLimit {
                        name: "shared".into(),
                        requests_per_unit: LIMIT,
                        unit: Unit::Minute as i32,
                    }),
                    limit_remaining: LIMIT.saturating_sub(*count),
                    duration_until_reset: Some(prost_types::Duration {
                        seconds: 41,
                        nanos: 500_000_000,
                    }),
                }
            })
            .collect();
        let overall = if statuses
            .iter()
            .any(|s| s.code == ResponseCode::OverLimit as i32)
        {
            ResponseCode::OverLimit
        } else {
            ResponseCode::Ok
        };
        Ok(tonic::Response::new(RateLimitResponse {
            overall_code: overall as i32,
            statuses,
        }))
    }
}

impl TestRls {
    async fn start(mode: Mode) -> (Running, TestRls) {
        let rls = TestRls {
            mode,
            hits: Arc::default(),
            seen: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = RateLimitServiceServer::new(rls.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
        });
        (Running::new(addr, tx), rls)
    }

    fn seen(&self) -> Vec<RateLimitRequest> {
        self.seen.lock().unwrap().clone()
    }
}

/// The bundled routes.yaml with a `rate_limit_service:` at `url`; `rest`
/// are its further lines (indented two spaces).
fn routes(url: &str, rest: &str) -> String {
    format!(
        "{}\nrate_limit_service:\n  url: {url}\n  domain: edge\n  timeout: 2s\n{rest}",
        common::bundled_routes_yaml()
    )
}

/// One descriptor for GetShelf, per client IP.
const PER_IP: &str = "  descriptors:
    - selector: library.v1.LibraryService.GetShelf
      entries:
        - {key: generic_key, value: shelves}
        - {key: remote_address, value: '{ip}'}
";

async fn get(env: &Env, path: &str) -> Reply {
    env.get(path).await
}

#[tokio::test]
async fn over_the_shared_limit_is_429_with_retry_after() {
    let (rls, test) = TestRls::start(Mode::Count).await;
    let env = Env::with_routes(&routes(&rls.url(), PER_IP)).await;
    for _ in 0..LIMIT {
        assert_eq!(get(&env, SHELF).await.status, 200);
    }
    let r = get(&env, SHELF).await;
    let body = r.assert_error(429, 8);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("\"shared\" (3 per minute, rate limit service)"),
        "{message}"
    );
    // 41.5 s until the reset, rounded up to whole seconds.
    assert_eq!(r.header("retry-after"), Some("42"));
    // What the service saw: the domain and the descriptor, per call.
    let seen = test.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].domain, "edge");
    let entries: Vec<(String, String)> = seen[0].descriptors[0]
        .entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    assert_eq!(
        entries,
        [
            ("generic_key".to_string(), "shelves".to_string()),
            ("remote_address".to_string(), "127.0.0.1".to_string()),
        ]
    );
    // A method no descriptor names is never asked about.
    assert_eq!(get(&env, "/v1/shelves").await.status, 200);
    assert_eq!(test.seen().len(), 4);
}

#[tokio::test]
async fn two_gateways_share_one_count() {
    let (rls, test) = TestRls::start(Mode::Count).await;
    let yaml = routes(&rls.url(), PER_IP);
    let first = Env::with_routes(&yaml).await;
    let second = Env::with_routes(&yaml).await;
    let mut statuses = Vec::new();
    for i in 0..=LIMIT {
        let env = if i % 2 == 0 { &first } else { &second };
        statuses.push(get(env, SHELF).await.status);
    }
    // LIMIT calls pass across both replicas; the next one, on either, is refused.
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(get(&first, SHELF).await.status, 429);
    assert_eq!(test.seen().len(), 5);
}

#[tokio::test]
async fn descriptors_take_the_method_route_and_header() {
    let (rls, test) = TestRls::start(Mode::Count).await;
    let env = Env::with_routes(&routes(
        &rls.url(),
        "  descriptors:
    - route: 'GET /v1/{name=shelves/*}'
      entries:
        - {key: route, value: '{route}'}
        - {key: method, value: '{method}'}
        - {key: service, value: '{service}'}
    - selector: library.v1.LibraryService.GetShelf
      entries: [{key: tenant, value: '{header:x-tenant}'}]
",
    ))
    .await;
    // Without the header its descriptor is left out; the other is sent.
    assert_eq!(get(&env, SHELF).await.status, 200);
    let r = env
        .http
        .get(env.url(SHELF))
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = test.seen();
    let describe = |r: &RateLimitRequest| -> Vec<String> {
        r.descriptors
            .iter()
            .map(|d| {
                d.entries
                    .iter()
                    .map(|e| format!("{}={}", e.key, e.value))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    let named = "route=GET /v1/{name=shelves/*},method=library.v1.LibraryService.GetShelf,service=library.v1.LibraryService";
    assert_eq!(describe(&seen[0]), [named]);
    assert_eq!(describe(&seen[1]), [named, "tenant=acme"]);
    // Over native gRPC the call has no route: the route's descriptor is
    // not sent, the selector's needs its header, so nothing is asked.
    let mut grpc = LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap();
    grpc.get_shelf(GetShelfRequest {
        name: "shelves/1".into(),
    })
    .await
    .unwrap();
    assert_eq!(test.seen().len(), 2);
}

#[tokio::test]
async fn native_grpc_over_the_limit_is_resource_exhausted() {
    let (rls, _test) = TestRls::start(Mode::Count).await;
    let env = Env::with_routes(&routes(
        &rls.url(),
        "  descriptors:
    - selector: library.v1.LibraryService.GetShelf
      entries: [{key: method, value: '{method}'}]
",
    ))
    .await;
    let mut grpc = LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap();
    let ask = || GetShelfRequest {
        name: "shelves/1".into(),
    };
    for _ in 0..LIMIT {
        grpc.get_shelf(ask()).await.unwrap();
    }
    let status = grpc.get_shelf(ask()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap(),
        "42"
    );
    assert_eq!(
        status
            .metadata()
            .get("grpc-retry-pushback-ms")
            .unwrap()
            .to_str()
            .unwrap(),
        "41500"
    );
}

/// The address of a port nothing listens on.
async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[tokio::test]
async fn service_down_fails_open_by_default() {
    protogate::observe::metrics::install().unwrap();
    let env = Env::with_routes(&routes(&closed_port().await, PER_IP)).await;
    for _ in 0..LIMIT + 2 {
        assert_eq!(get(&env, SHELF).await.status, 200);
    }
    let text = protogate::observe::metrics::render().unwrap();
    let failed_open = text
        .lines()
        .find(|l| l.starts_with("protogate_rate_limit_service_total{result=\"failed_open\"}"))
        .unwrap_or_else(|| panic!("no failed_open counter in {text}"));
    let count: u64 = failed_open.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= u64::from(LIMIT + 2), "{failed_open}");
}

#[tokio::test]
async fn service_down_fails_closed_when_asked() {
    let env = Env::with_routes(&routes(
        &closed_port().await,
        &format!("  failure_mode: deny\n{PER_IP}"),
    ))
    .await;
    let r = get(&env, SHELF).await;
    let body = r.assert_error(503, 14);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("rate limit service http://127.0.0.1:"),
        "{message}"
    );
    // Calls no descriptor names do not depend on the service.
    assert_eq!(get(&env, "/v1/shelves").await.status, 200);
}

#[tokio::test]
async fn a_failing_or_slow_service_follows_the_failure_mode() {
    let (failing, _f) = TestRls::start(Mode::Fail).await;
    let open = Env::with_routes(&routes(&failing.url(), PER_IP)).await;
    assert_eq!(get(&open, SHELF).await.status, 200);
    let closed = Env::with_routes(&routes(
        &failing.url(),
        &format!("  failure_mode: deny\n{PER_IP}"),
    ))
    .await;
    let body = get(&closed, SHELF).await.assert_error(503, 14);
    assert!(
        body["message"].as_str().unwrap().contains("redis is down"),
        "{body}"
    );

    // Slower than its 50ms timeout: counted as failed, whatever it answers.
    let (slow, test) = TestRls::start(Mode::Slow(Duration::from_secs(5))).await;
    let yaml = routes(&slow.url(), PER_IP).replace("timeout: 2s", "timeout: 50ms");
    let open = Env::with_routes(&yaml).await;
    assert_eq!(get(&open, SHELF).await.status, 200);
    let closed =
        Env::with_routes(&yaml.replace("  descriptors:", "  failure_mode: deny\n  descriptors:"))
            .await;
    let body = get(&closed, SHELF).await.assert_error(503, 14);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 50ms"),
        "{body}"
    );
    assert_eq!(test.seen().len(), 2);
}

#[tokio::test]
async fn configuration_errors_name_the_field() {
    let bad = [
        (
            "rate_limit_service: {url: 'http://x:1', descriptors: [{selector: '*', entries: [{key: k, value: '{cookie}'}]}]}",
            "rate_limit_service.descriptors[0].entries[0]: unknown placeholder \"{cookie}\"",
        ),
        (
            "rate_limit_service: {url: 'http://x:1', descriptors: []}",
            "rate_limit_service.descriptors",
        ),
        (
            "rate_limit_service: {url: 'x', descriptors: [{selector: '*', entries: [{key: k, value: v}]}]}",
            "rate_limit_service.url",
        ),
    ];
    for (yaml, field) in bad {
        let err = protogate::config::Config::parse(yaml).unwrap_err();
        assert!(err.contains(field), "{field} in {err}");
    }
    // A route that is not one of the gateway's fails the build, naming it.
    let config = protogate::config::Config::parse(
        "rate_limit_service: {url: 'http://127.0.0.1:1', descriptors: [{route: 'GET /v1/nope', entries: [{key: k, value: v}]}]}",
    )
    .unwrap();
    let built = protogate::gateway::Gateway::build_with(
        common::pool(),
        config,
        None,
        &Arc::new(protogate::gateway::Resources::default()),
    );
    let Err(err) = built else {
        panic!("the build should fail");
    };
    let err = err.to_string();
    assert!(err.contains("rate_limit_service.descriptors[0]"), "{err}");
}

#[tokio::test]
async fn the_verified_subject_is_a_descriptor_value() {
    const SECRET: &str = "a-global-limit-test-secret-of-32-bytes";
    // SAFETY: only this test reads or writes this variable.
    unsafe { std::env::set_var("GLOBAL_RLS_TEST_HMAC", SECRET) };
    let (rls, test) = TestRls::start(Mode::Count).await;
    let yaml = format!(
        "mock: {{enabled: true}}
auth:
  default: anonymous
  providers:
    t: {{issuer: t, algorithms: [HS256], hmac_secret_env: GLOBAL_RLS_TEST_HMAC}}
rate_limit_service:
  url: {}
  timeout: 2s
  descriptors:
    - selector: '*'
      entries: [{{key: user, value: '{{subject}}'}}]
",
        rls.url()
    );
    let (gateway, _gw) = common::start_gateway(&yaml, None).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let claims = serde_json::json!({"iss": "t", "sub": "alice", "exp": exp});
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}{SHELF}", gateway.url());
    for _ in 0..LIMIT {
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Anonymous calls have no subject: nothing is asked, nothing limited.
    for _ in 0..LIMIT + 1 {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    }
    let seen = test.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].domain, "protogate", "the default domain");
    assert_eq!(seen[0].descriptors[0].entries[0].value, "alice");
}

/// Throughput and latency of REST GetShelf with no limit, a local limit
/// and a global one configured but not hit (the service always answers
/// OK): 32 callers in a closed loop, 4 s per run, the three alternated
/// three times; medians printed. A debug build, with the service, backend,
/// gateway and callers sharing the machine: only the ratios count.
/// `cargo test --test global_rate_limits bench -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run by hand"]
async fn bench_limits_configured_but_not_hit() {
    let (rls, _test) = TestRls::start(Mode::Allow).await;
    let bundled = common::bundled_routes_yaml();
    let local = format!(
        "{bundled}\nrate_limits:\n  - {{name: wide, selector: '*', key: ip, rate: 1000000/s}}\n"
    );
    let global = routes(&rls.url(), PER_IP);
    let setups = [("none", bundled), ("local", local), ("global", global)];
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); setups.len()];
    for _round in 0..3 {
        for (i, (_, yaml)) in setups.iter().enumerate() {
            let env = Env::with_routes(yaml).await;
            results[i].push(closed_loop(&env, 32, Duration::from_secs(4)).await);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&mut results[0].iter().map(|r| r.0).collect());
    for ((name, _), runs) in setups.iter().zip(&results) {
        let rps = median(&mut runs.iter().map(|r| r.0).collect());
        let p50 = median(&mut runs.iter().map(|r| r.1).collect());
        let p99 = median(&mut runs.iter().map(|r| r.2).collect());
        println!(
            "{name:>6}: {rps:>8.0} req/s ({:.2}x none), p50 {p50:.2} ms, p99 {p99:.2} ms; runs {:?}",
            rps / base,
            runs.iter().map(|r| r.0.round()).collect::<Vec<_>>()
        );
    }
}

/// `callers` loops of GetShelf for `length`: (req/s, p50 ms, p99 ms).
async fn closed_loop(env: &Env, callers: usize, length: Duration) -> (f64, f64, f64) {
    let until = tokio::time::Instant::now() + length;
    let url = env.url(SHELF);
    let workers: Vec<_> = (0..callers)
        .map(|_| {
            let http = env.http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut took = Vec::new();
                while tokio::time::Instant::now() < until {
                    let t = tokio::time::Instant::now();
                    let r = http.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    let _ = r.bytes().await;
                    took.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                took
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort_by(f64::total_cmp);
    let at = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / length.as_secs_f64(), at(0.5), at(0.99))
}
