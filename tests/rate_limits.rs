//! Local rate limits (`rate_limits:`), through the real gateway over real
//! HTTP in front of the real example backend (and the mock where that is
//! simpler): buckets per client IP (two loopback source addresses), per
//! header value and per verified subject; a limited method next to one that
//! is not; a route's limit that the method's gRPC path does not share; the
//! burst, then a refill; the 429 shape (`Retry-After`, the JSON error,
//! the metric) and RESOURCE_EXHAUSTED over native gRPC, gRPC-Web and
//! Connect; configuration errors naming the field; reloads that keep an
//! unchanged limit's buckets and replace a changed one's.
//!
//! Rates are either tiny (`1/h`: a spent token never comes back during a
//! test) or quick (`20/s`) with bounded waits; assertions are on outcomes,
//! never on timing.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::backend::pb::library::v1::GetShelfRequest;
use common::backend::pb::library::v1::library_service_client::LibraryServiceClient;
use common::{Env, Reply};
use protogate::config::Config;
use protogate::descriptors::DescriptorSource;
use protogate::gateway::{Gateway, Resources, Settings};

const SHELF: &str = "/v1/shelves/1";
const SHELVES: &str = "/v1/shelves";

/// The bundled routes.yaml with `limits` (YAML list items) as its
/// `rate_limits:` section.
fn routes_with(limits: &str) -> String {
    format!("{}\nrate_limits:\n{limits}", common::bundled_routes_yaml())
}

/// A client whose connections leave from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, env: &Env, path: &str) -> Reply {
    Reply::from(client.get(env.url(path)).send().await.unwrap()).await
}

async fn get_with(env: &Env, path: &str, header: Option<(&str, &str)>) -> Reply {
    let mut r = env.http.get(env.url(path));
    if let Some((k, v)) = header {
        r = r.header(k, v);
    }
    Reply::from(r.send().await.unwrap()).await
}

/// Asserts a rate limit's 429: the JSON error (code 8, a message naming
/// the limit) and `Retry-After` in whole seconds; returns them.
fn assert_limited(r: &Reply, limit: &str) -> u64 {
    let body = r.assert_error(429, 8);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("rate limit \"{limit}\"")),
        "{message}"
    );
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After on a rate limit's 429")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(secs >= 1, "{secs}");
    secs
}

#[tokio::test]
async fn buckets_are_per_client_ip_and_per_method() {
    let env = Env::with_routes(&routes_with(
        "  - {name: per-ip, selector: library.v1.LibraryService.GetShelf, key: ip, rate: 1/h, burst: 2}\n",
    ))
    .await;
    let (a, b) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    for _ in 0..2 {
        assert_eq!(get(&a, &env, SHELF).await.status, 200);
    }
    let refused = get(&a, &env, SHELF).await;
    let secs = assert_limited(&refused, "per-ip");
    // One token an hour: the next one is most of an hour away.
    assert!((3000..=3600).contains(&secs), "{secs}");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("1/h per ip")
    );
    // The other address has its own bucket.
    for _ in 0..2 {
        assert_eq!(get(&b, &env, SHELF).await.status, 200);
    }
    assert_eq!(get(&b, &env, SHELF).await.status, 429);
    // Another method is not limited.
    for _ in 0..5 {
        assert_eq!(get(&a, &env, SHELVES).await.status, 200);
    }
}

#[tokio::test]
async fn buckets_per_header_value_and_one_for_calls_without_it() {
    let env = Env::with_routes(&routes_with(
        "  - {name: per-key, selector: 'library.v1.LibraryService.*', key: 'header:X-Api-Key', rate: 1/h, burst: 1}\n",
    ))
    .await;
    assert_eq!(
        get_with(&env, SHELF, Some(("x-api-key", "a"))).await.status,
        200
    );
    // The service-wide selector: ListShelves draws from the same bucket.
    let r = get_with(&env, SHELVES, Some(("x-api-key", "a"))).await;
    assert_limited(&r, "per-key");
    assert_eq!(
        get_with(&env, SHELF, Some(("x-api-key", "b"))).await.status,
        200
    );
    assert_eq!(
        get_with(&env, SHELF, Some(("x-api-key", "b"))).await.status,
        429
    );
    // Calls without the header share one bucket.
    assert_eq!(get_with(&env, SHELF, None).await.status, 200);
    assert_eq!(get_with(&env, SHELVES, None).await.status, 429);
}

#[tokio::test]
async fn a_burst_then_a_refill() {
    // 20/s: a token every 50 ms, two at most.
    let env = Env::with_routes(&routes_with(
        "  - {name: quick, selector: '*', rate: 20/s, burst: 2}\n",
    ))
    .await;
    // A fresh bucket holds two tokens, whatever the pace.
    for _ in 0..2 {
        assert_eq!(get(&env.http, &env, SHELF).await.status, 200);
    }
    // Calls in a row outrun 20/s sooner or later (bounded: a machine so
    // slow that 1000 calls never do fails here rather than hanging).
    let mut refused = None;
    for _ in 0..1000 {
        let r = get(&env.http, &env, SHELF).await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let refused = refused.expect("calls in a row were never limited");
    assert_eq!(
        assert_limited(&refused, "quick"),
        1,
        "50 ms rounds up to 1 s"
    );
    // The bucket refills: a call passes again within a bounded wait.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(60)).await;
        if get(&env.http, &env, SHELF).await.status == 200 {
            break;
        }
        assert!(Instant::now() < until, "the bucket never refilled");
    }
}

#[tokio::test]
async fn refusals_are_counted_per_limit() {
    protogate::observe::metrics::install().unwrap();
    let env = Env::with_routes(&routes_with(
        "  - {name: counted-limit, selector: library.v1.LibraryService.GetShelf, rate: 1/h, burst: 1}\n",
    ))
    .await;
    assert_eq!(get(&env.http, &env, SHELF).await.status, 200);
    for _ in 0..3 {
        assert_eq!(get(&env.http, &env, SHELF).await.status, 429);
    }
    let text = protogate::observe::metrics::render().unwrap();
    assert!(
        text.contains("protogate_rate_limited_total{limit=\"counted-limit\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("# HELP protogate_rate_limited_total"),
        "{text}"
    );
}

#[tokio::test]
async fn framed_protocols_answer_resource_exhausted() {
    let env = Env::with_routes(&routes_with(
        "  - {name: framed, selector: library.v1.LibraryService.GetShelf, rate: 1/h, burst: 1}\n",
    ))
    .await;
    // Native gRPC (tonic): the token goes, then RESOURCE_EXHAUSTED with
    // the wait as metadata.
    let mut grpc = LibraryServiceClient::connect(env.gateway.url())
        .await
        .unwrap();
    let ask = || {
        tonic::Request::new(GetShelfRequest {
            name: "shelves/1".into(),
        })
    };
    grpc.get_shelf(ask()).await.unwrap();
    let status = grpc.get_shelf(ask()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("rate limit \"framed\""),
        "{status:?}"
    );
    let secs: u64 = status
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 3000, "{secs}");
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());

    // gRPC-Web (binary): the status in a trailers-only answer or a trailer frame.
    let frame = [&[0u8, 0, 0, 0, 11][..], b"\x0a\x09shelves/1"].concat();
    let r = env
        .http
        .post(env.url("/library.v1.LibraryService/GetShelf"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(frame)
        .send()
        .await
        .unwrap();
    let in_headers = r
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        in_headers.as_deref() == Some("8") || text.contains("grpc-status:8"),
        "{in_headers:?} {text}"
    );

    // Connect (unary JSON): Connect's error shape, 429 and Retry-After.
    let r = env
        .http
        .post(env.url("/library.v1.LibraryService/GetShelf"))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .body(r#"{"name": "shelves/1"}"#)
        .send()
        .await
        .unwrap();
    let r = Reply::from(r).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "resource_exhausted");
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn a_route_limit_leaves_the_method_s_other_entry_points_alone() {
    // Mock mode: no backend needed.
    let yaml = "mock: {enabled: true}\nrate_limits:\n  - {name: route-only, route: 'GET /v1/{name=shelves/*}', rate: 1/h, burst: 1}\n";
    let (gateway, _gw) = common::start_gateway(yaml, None).await;
    let http = reqwest::Client::new();
    let url = format!("{}{SHELF}", gateway.url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let r = Reply::from(http.get(&url).send().await.unwrap()).await;
    assert_limited(&r, "route-only");
    // The same method over gRPC is not that route.
    let mut grpc = LibraryServiceClient::connect(gateway.url()).await.unwrap();
    for _ in 0..3 {
        grpc.get_shelf(GetShelfRequest {
            name: "shelves/1".into(),
        })
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn buckets_per_verified_subject() {
    const SECRET: &str = "a-rate-limit-test-secret-of-32-bytes!";
    static ENV: OnceLock<()> = OnceLock::new();
    ENV.get_or_init(|| unsafe { std::env::set_var("RATE_TEST_HMAC", SECRET) });
    let yaml = "mock: {enabled: true}
auth:
  default: anonymous
  providers:
    t: {issuer: t, algorithms: [HS256], hmac_secret_env: RATE_TEST_HMAC}
rate_limits:
  - {name: per-user, selector: '*', key: subject, rate: 1/h, burst: 1}
";
    let (gateway, _gw) = common::start_gateway(yaml, None).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = |sub: &str| {
        let claims = serde_json::json!({"iss": "t", "sub": sub, "exp": exp});
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    };
    let http = reqwest::Client::new();
    let url = format!("{}{SHELF}", gateway.url());
    let call = |t: Option<String>| {
        let mut r = http.get(&url);
        if let Some(t) = t {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(Some(token("alice"))).await, 200);
    assert_eq!(call(Some(token("alice"))).await, 429);
    assert_eq!(call(Some(token("bob"))).await, 200);
    // Anonymous calls share one bucket.
    assert_eq!(call(None).await, 200);
    assert_eq!(call(None).await, 429);
}

#[test]
fn configuration_errors_name_the_field() {
    let parse = |limits: &str| Config::parse(&format!("rate_limits:\n{limits}")).unwrap_err();
    let cases = [
        (
            "  - {name: a, selector: '*', rate: 10/s, key: cookie}",
            "rate_limits[0].key",
        ),
        (
            "  - {name: a, selector: '*', rate: 10/s, key: 'header:bad name'}",
            "rate_limits[0].key",
        ),
        (
            "  - {name: a, selector: '*', rate: ten}",
            "rate_limits[0].rate",
        ),
        (
            "  - {name: a, selector: '*', rate: 0/s}",
            "rate_limits[0].rate",
        ),
        (
            "  - {name: a, selector: '*', rate: 10/day}",
            "rate_limits[0].rate",
        ),
        (
            "  - {name: a, selector: '*', rate: 10/s, burst: 0}",
            "rate_limits[0].burst",
        ),
        (
            "  - {name: a, selector: '*', rate: 10/s, max_keys: 0}",
            "rate_limits[0].max_keys",
        ),
        (
            "  - {name: a, selector: '*', rate: 10/s, brust: 3}",
            "unknown field `brust`",
        ),
        (
            "  - {name: a, rate: 10/s}",
            "rate_limits[0]: name a selector or a route",
        ),
        (
            "  - {name: 'a b', selector: '*', rate: 10/s}",
            "rate_limits[0].name",
        ),
        ("  - {selector: '*', rate: 10/s}", "missing field `name`"),
        (
            "  - {name: a, selector: '*', rate: 1/s}\n  - {name: a, selector: '*', rate: 2/s}",
            "rate_limits[1].name",
        ),
    ];
    for (yaml, expected) in cases {
        let err = parse(yaml);
        assert!(err.contains(expected), "{yaml}\n→ {err}");
    }
    // A route must be one of the gateway's.
    let config =
        Config::parse("rate_limits:\n  - {name: a, route: 'GET /v1/nope', rate: 1/s}\n").unwrap();
    let err = Gateway::build(common::pool(), config, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rate_limits[0].route"), "{err}");
    assert!(err.contains("GET /v1/nope"), "{err}");
}

fn write(path: &Path, limits: &str) {
    std::fs::write(path, format!("mock: {{enabled: true}}\n{limits}")).unwrap();
}

#[tokio::test]
async fn reloads_keep_unchanged_limits_and_replace_changed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    let one = "rate_limits:\n  - {name: live, selector: library.v1.LibraryService.GetShelf, rate: 1/h, burst: 1}\n";
    write(&routes, one);
    let settings = Settings {
        descriptors: vec![DescriptorSource::Path(common::descriptors_dir())],
        routes: vec![routes.clone()],
        watch: Some(false),
        ..Settings::default()
    };
    let gw = common::start_live(settings, Resources::default()).await;
    let http = reqwest::Client::new();
    let status = |path: &'static str| {
        let r = http.get(format!("{}{path}", gw.url));
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(SHELF).await, 200);
    assert_eq!(status(SHELF).await, 429);

    // Another setting changes, the limit does not: its spent token stays spent.
    write(&routes, &format!("{one}timeouts: {{'*': 20s}}\n"));
    let report = gw.live.reload("test").await;
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(status(SHELF).await, 429);

    // The limit changes: new, full buckets; and it now names ListShelves too.
    write(
        &routes,
        "rate_limits:\n  - {name: live, selector: 'library.v1.LibraryService.*Shel*', rate: 1/h, burst: 2}\n",
    );
    assert!(gw.live.reload("test").await.ok);
    assert_eq!(status(SHELF).await, 200);
    assert_eq!(status(SHELVES).await, 200);
    assert_eq!(status(SHELF).await, 429);

    // A reload that fails keeps the serving limits.
    write(
        &routes,
        "rate_limits:\n  - {name: live, selector: '*', rate: fast}\n",
    );
    let report = gw.live.reload("test").await;
    assert!(!report.ok);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("rate_limits[0].rate")),
        "{:?}",
        report.problems
    );
    assert_eq!(status(SHELF).await, 429);

    // No limits: nothing is refused.
    write(&routes, "");
    assert!(gw.live.reload("test").await.ok);
    for _ in 0..3 {
        assert_eq!(status(SHELF).await, 200);
    }
}
