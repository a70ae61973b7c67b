//! The standing bad-input suite: hundreds of generated malformed and hostile
//! requests, in every category the hardening issue found, against the real
//! `protogate` binary in front of real backends (the example library server
//! and a tonic echo server for the probe service). For every request:
//! a 4xx in the JSON error shape (never a 5xx for a client's fault), or for
//! gRPC a non-OK status; after every category the process is alive and
//! answers; memory stays bounded. The peak RSS each request caused is
//! measured (Linux: /proc/<pid>/clear_refs resets the high-water mark) and
//! the worst one reported relative to the request's size.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One generated request.
enum Probe {
    /// Method, path and query, headers, body.
    Http(&'static str, String, Vec<(String, Vec<u8>)>, Vec<u8>),
    /// Raw bytes on a fresh HTTP/1.1 connection.
    Raw(Vec<u8>),
}

impl Probe {
    fn size(&self) -> usize {
        match self {
            Probe::Http(_, p, h, b) => {
                p.len() + b.len() + h.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
            }
            Probe::Raw(r) => r.len(),
        }
    }
}

fn json_post(path: &str, body: impl Into<Vec<u8>>) -> Probe {
    Probe::Http(
        "POST",
        path.to_string(),
        vec![("content-type".into(), b"application/json".to_vec())],
        body.into(),
    )
}

fn get(path: String) -> Probe {
    Probe::Http("GET", path, vec![], vec![])
}

fn with_header(path: &str, name: &str, value: Vec<u8>) -> Probe {
    Probe::Http(
        "GET",
        path.to_string(),
        vec![(name.to_string(), value)],
        vec![],
    )
}

/// Every category, by name.
fn categories() -> Vec<(&'static str, Vec<Probe>)> {
    vec![
        ("malformed JSON", malformed_json()),
        ("wrong types", wrong_types()),
        ("deep nesting", deep_nesting()),
        ("memory bombs", memory_bombs()),
        ("numbers and times", numbers_and_times()),
        ("query strings", query_strings()),
        ("paths", paths()),
        ("headers", headers()),
        ("raw HTTP", raw_http()),
    ]
}

const VALID: &str = r#"{"node": {"child": {"v": "x"}}, "meta": {"a": [1, {"b": null}]}, "i64": "5", "ts": "2024-01-01T00:00:00Z", "nums": [1, 2], "counts": {"a": "1"}}"#;

fn malformed_json() -> Vec<Probe> {
    let mut out: Vec<Probe> = (1..VALID.len())
        .step_by(3)
        .map(|cut| json_post("/v1/probe", &VALID.as_bytes()[..cut]))
        .collect();
    for bad in [
        &b"\xff\xfe{}"[..],
        b"{\"s\": \"\xc0\xaf\"}",
        b"{} {}",
        b"{\"s\": \"x\"} trailing",
        b"[]",
        b"\"just a string\"",
        b"{\"s\": \"\\ud800\"}",
        b"{\"unknown\": 1}",
        b"{\"node\": {\"nope\": 1}}",
        b"{,}",
        b"{\"s\":}",
        b"nul",
        b"{\"s\": \"\\x41\"}",
    ] {
        out.push(json_post("/v1/probe", bad));
    }
    out.push(json_post(
        "/v1/shelves/1/books",
        r#"{"title": ["not", "a", "string"]}"#,
    ));
    out.push(json_post("/v1/shelves", r#"{"theme": 1e999}"#));
    out
}

fn wrong_types() -> Vec<Probe> {
    let fields = [
        "i64", "u64", "f64", "s64", "wi64", "wu64", "ts", "dur", "i32", "d", "nums", "counts",
        "mask", "node", "list", "meta",
    ];
    let values = [
        r#""text""#,
        "true",
        "[1]",
        r#"{"x": 1}"#,
        "1.5",
        r#""1e3""#,
        "-1",
    ];
    let mut out = Vec::new();
    for f in fields {
        for v in values {
            let body = format!("{{\"{f}\": {v}}}");
            // Some pairings are valid (a number for a double, -1 for an int):
            // the suite only asserts "no 5xx, JSON shape".
            out.push(json_post("/v1/probe", body));
        }
    }
    out
}

fn deep_nesting() -> Vec<Probe> {
    let mut out = Vec::new();
    for n in [65, 200, 1000, 10_000, 100_000] {
        out.push(json_post(
            "/v1/probe",
            format!(r#"{{"list": {}1{}}}"#, "[".repeat(n), "]".repeat(n)),
        ));
        out.push(json_post(
            "/v1/probe",
            format!(r#"{{"meta": {}1{}}}"#, r#"{"a": "#.repeat(n), "}".repeat(n)),
        ));
        out.push(json_post(
            "/v1/probe",
            format!(
                r#"{{"node": {}{{}}{}}}"#,
                r#"{"child": "#.repeat(n),
                "}".repeat(n)
            ),
        ));
        // (Clients cannot send URIs of 64 KiB and more: raw HTTP tries those.)
        out.push(get(format!(
            "/v1/probe?node.{}v=1",
            "child.".repeat(n.min(8_000))
        )));
    }
    out
}

fn memory_bombs() -> Vec<Probe> {
    vec![
        json_post(
            "/v1/probe",
            format!(r#"{{"list": [{}1]}}"#, "1,".repeat(1_900_000)),
        ),
        json_post(
            "/v1/probe",
            format!(r#"{{"value": [{}1]}}"#, "1,".repeat(1_000_000)),
        ),
        json_post(
            "/v1/probe",
            format!(
                r#"{{"meta": {{{}}}}}"#,
                (0..240_000)
                    .map(|i| format!(r#""k{i}":1"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        json_post(
            "/v1/probe",
            format!(r#"{{"nodes": [{}{{}}]}}"#, "{},".repeat(1_300_000)),
        ),
        json_post(
            "/v1/probe",
            format!(r#"{{"s": "{}"}}"#, "x".repeat(5 << 20)),
        ),
        json_post(
            "/v1/probe",
            format!(
                r#"{{"counts": {{{}}}}}"#,
                (0..300_000)
                    .map(|i| format!(r#""{i}":1"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
    ]
}

fn numbers_and_times() -> Vec<Probe> {
    let mut out = Vec::new();
    for (f, v) in [
        ("i64", "-9223372036854775809"),
        ("i64", "9223372036854775808"),
        ("i64", "1e19"),
        ("u64", "18446744073709551616"),
        ("u64", "-1"),
        ("f64", "18446744073709551616"),
        ("s64", "-9223372036854775809"),
        ("wi64", "9223372036854775808"),
        ("wu64", "18446744073709551616"),
        ("i32", "2147483648"),
        ("i32", "1.5"),
        ("ts", r#""2024-01-01T00:00:00.1234567891Z""#),
        ("ts", r#""2024-01-01T23:59:60Z""#),
        ("ts", r#""10000-01-01T00:00:00Z""#),
        ("ts", r#""2024-01-01""#),
        ("dur", r#""315576000001s""#),
        ("dur", r#""1.0000000001s""#),
        ("dur", r#""1h""#),
    ] {
        out.push(json_post("/v1/probe", format!("{{\"{f}\": {v}}}")));
        out.push(get(format!("/v1/probe?{f}={}", v.trim_matches('"'))));
    }
    out
}

fn query_strings() -> Vec<Probe> {
    let mut out = Vec::new();
    for q in [
        "s=%ZZ",
        "s=%",
        "s=%4",
        "s=%C0%AF",
        "s=%FF",
        "s%ZZ=1",
        "%=1",
        "a=1&b=2",
        "nope=1",
        "node=1",
        "node.nope=1",
        "counts=1",
        "counts[a]=x",
        "counts[a=1",
        "nums=x",
        "i32=1%0A",
        "i64=+-1",
        "mask=a.b.c&mask",
        "ts=yesterday",
        "dur=soon",
        "d=1e999999",
        "wi64=x",
        "any=x",
        "list=1",
        "meta=1",
        "value=1",
        "s[a]=1",
        "node.child[0]=1",
        "..=1",
        ".=1",
        "a.=1",
    ] {
        out.push(get(format!("/v1/probe?{q}")));
        out.push(get(format!("/v1/shelves/1/books?{q}")));
    }
    out
}

fn paths() -> Vec<Probe> {
    let mut out = Vec::new();
    for p in [
        "/v1/probe/1%0A",
        "/v1/probe/x",
        "/v1/probe/%ZZ",
        "/v1/probe/%C0%AF",
        "/v1/probe/1%00",
        "/v1/probe/99999999999999999999",
        "/v1/shelves/%FF",
        "/v1/shelves/1/books/%E2%82",
        "/v1/shelves/1/books/1:nope",
        "/v1//shelves",
        "/v1/shelves/1/",
        "/nowhere",
        "/",
        "/v1/%2e%2e/x",
        "/v1/shelves/1/books/1:move:move",
        "/v1/search/%FF",
    ] {
        out.push(get(p.to_string()));
    }
    out.push(Probe::Http("PUT", "/v1/shelves/1".into(), vec![], vec![]));
    out.push(Probe::Http("BREW", "/v1/shelves/1".into(), vec![], vec![]));
    out.push(Probe::Http(
        "GET",
        "/library.v1.LibraryService/GetShelf".into(),
        vec![("content-type".into(), b"application/grpc".to_vec())],
        vec![],
    ));
    out.push(Probe::Http(
        "POST",
        "/v1/shelves".into(),
        vec![("content-type".into(), b"text/plain".to_vec())],
        b"x".to_vec(),
    ));
    out.push(Probe::Http(
        "POST",
        "/v1/shelves".into(),
        vec![(
            "content-type".into(),
            b"application/json; charset=latin1".to_vec(),
        )],
        b"{}".to_vec(),
    ));
    out.push(json_post("/v1/shelves/1", "{}"));
    out
}

fn headers() -> Vec<Probe> {
    let mut out = Vec::new();
    for size in [8 << 10, 20 << 10, 100 << 10] {
        out.push(with_header(
            "/v1/shelves/1",
            "grpc-metadata-x-big",
            vec![b'a'; size],
        ));
        out.push(with_header(
            "/v1/shelves/1",
            "authorization",
            [b"Bearer ".to_vec(), vec![b't'; size]].concat(),
        ));
    }
    for (name, value) in [
        ("grpc-metadata-x-note", &b"caf\xe9"[..]),
        ("grpc-metadata-x-bin", b"!!!"),
        ("grpc-metadata-x-bin", b"a"),
        ("grpc-timeout", b"soon"),
        ("grpc-timeout", b"999999999S"),
        ("grpc-timeout", b"-1S"),
        ("grpc-metadata-", b"x"),
    ] {
        out.push(with_header("/v1/shelves/1", name, value.to_vec()));
    }
    let many: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| (format!("grpc-metadata-x-{i}"), b"v".to_vec()))
        .collect();
    out.push(Probe::Http("GET", "/v1/shelves/1".into(), many, vec![]));
    out
}

fn raw_http() -> Vec<Probe> {
    let mut out: Vec<Probe> = [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /v1/shelves/1 HTTP/9.9\r\n\r\n",
        b"GET /v1/shelves/1 HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n",
        b"GET /v1/shelves/1 HTTP/1.1\r\nhost: x\r\nx-a\x01b: 1\r\n\r\n",
        b"GET /v1/shelves/1 HTTP/1.1\r\nhost: x\r\nx: a\rb\r\n\r\n",
        b"POST /v1/shelves HTTP/1.1\r\nhost: x\r\ncontent-length: banana\r\n\r\n",
        b"POST /v1/shelves HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
        b"POST /v1/shelves HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        b"POST /v1/shelves HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip, chunked\r\ncontent-type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"POST /v1/shelves HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"POST /v1/shelves HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n0\r\n\r\n",
        b"GET /v1/shelves/1 HTTP/1.1\r\n\r\n",
        b"GET /v1/shelves/1 HTTP/1.1\r\nhost: x\r\nx-tenant: \x01\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ]
    .iter()
    .map(|r| Probe::Raw(r.to_vec()))
    .collect();
    out.push(Probe::Raw(
        format!(
            "GET /v1/shelves/1?{} HTTP/1.1\r\nhost: x\r\n\r\n",
            "a=1&".repeat(20_000)
        )
        .into_bytes(),
    ));
    out.push(Probe::Raw(
        format!(
            "GET /v1/shelves/1 HTTP/1.1\r\nhost: x\r\nx: {}\r\n\r\n",
            "a".repeat(40_000)
        )
        .into_bytes(),
    ));
    out
}

fn start(backend: &str, echo: &str, dir: &std::path::Path) -> common::Binary {
    let routes = dir.join("routes.yaml");
    std::fs::write(
        &routes,
        format!("upstreams:\n  library: {{url: '{backend}'}}\n  probe: {{url: '{echo}', services: [hardening.v1.ProbeService]}}\n"),
    )
    .unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    common::Binary::serve(&[
        "--routes".as_ref(),
        routes.as_os_str(),
        "--descriptors".as_ref(),
        root.join("descriptors").as_os_str(),
        "--descriptors".as_ref(),
        root.join("tests/fixtures/hardening").as_os_str(),
    ])
}

/// Sends one probe; returns (HTTP status, body), or None when the gateway
/// closed the connection without an answer.
async fn send(http: &reqwest::Client, addr: &str, probe: &Probe) -> Option<(u16, Vec<u8>)> {
    match probe {
        Probe::Http(method, path, headers, body) => {
            let mut req = http.request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("http://{addr}{path}"),
            );
            for (k, v) in headers {
                req = req.header(
                    k.as_str(),
                    reqwest::header::HeaderValue::from_bytes(v).unwrap(),
                );
            }
            let r = match req.body(body.clone()).send().await {
                Ok(r) => r,
                Err(e) => {
                    assert!(!e.is_builder(), "the test client cannot send this request");
                    return None;
                }
            };
            let status = r.status().as_u16();
            Some((status, r.bytes().await.ok()?.to_vec()))
        }
        Probe::Raw(bytes) => {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let _ = tcp.write_all(bytes).await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
            let text = String::from_utf8_lossy(&out);
            let status = text.get(9..12)?.parse().ok()?;
            let body = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| out[i + 4..].to_vec())
                .unwrap_or_default();
            Some((status, body))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_json_and_the_gateway_stays_up_and_small() {
    let (backend, _) = common::start_backend().await;
    let echo = common::start_echo().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&backend.url(), &echo.url(), dir.path());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let healthy = || async {
        let r = http
            .get(format!("http://{}/v1/shelves/1", gw.addr))
            .send()
            .await;
        r.is_ok_and(|r| r.status() == 200)
    };
    assert!(healthy().await);
    let baseline = gw.memory("VmRSS:");
    let (mut total, mut worst) = (0, (0usize, 0usize, String::new()));
    for (category, probes) in categories() {
        for (i, probe) in probes.iter().enumerate() {
            gw.reset_peak();
            let before = gw.memory("VmRSS:");
            let what = format!("{category} #{i}");
            let answer = send(&http, &gw.addr, probe).await;
            let peak = gw.memory("VmHWM:").saturating_sub(before);
            if peak > worst.0 {
                worst = (peak, probe.size(), what.clone());
            }
            total += 1;
            // Only bytes that are not HTTP at all (a TLS hello) may get no answer.
            let Some((status, body)) = answer else {
                let tls = matches!(probe, Probe::Raw(r) if r.first() == Some(&0x16));
                assert!(tls, "{what}: the connection closed without an answer");
                continue;
            };
            assert!(
                status < 500,
                "{what}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            if status >= 400 {
                let j: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                    panic!(
                        "{what}: {status} not JSON ({e}): {}",
                        String::from_utf8_lossy(&body)
                    )
                });
                assert!(j["code"].as_i64().is_some_and(|c| c > 0), "{what}: {j}");
                assert!(
                    j["message"].is_string() && j["details"].is_array(),
                    "{what}: {j}"
                );
            }
        }
        assert!(
            healthy().await,
            "the gateway stopped answering after {category}"
        );
    }
    let (peak, size, what) = worst;
    let rss = gw.memory("VmRSS:");
    eprintln!(
        "bad-input suite: {total} requests; RSS {} MiB before, {} MiB after; worst request: {what}, {} KiB, peak +{} MiB ({:.1}x its size)",
        baseline >> 20,
        rss >> 20,
        size >> 10,
        peak >> 20,
        peak as f64 / size.max(1) as f64
    );
    assert!(total >= 300, "{total} requests");
    assert!(
        peak < 256 << 20,
        "the worst request ({what}) grew the peak RSS by {} MiB",
        peak >> 20
    );
    assert!(
        rss < baseline + (256 << 20),
        "RSS grew from {} to {} MiB",
        baseline >> 20,
        rss >> 20
    );
}
