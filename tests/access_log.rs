//! The access log and request ids, through the real binary (mock mode, JSON
//! logs): one event per request with the fields operators filter on, the
//! client's `x-request-id` kept and a new one made when it sent none, and
//! never a token in the log.

#[path = "common/process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Gateway {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Gateway {
    start_with(extra, &[])
}

fn start_with(extra: &[&str], envs: &[(&str, &str)]) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .args([
            "serve",
            "--mock",
            "--listen",
            "127.0.0.1:0",
            "--watch",
            "false",
        ])
        .args(["--log-format", "json"])
        .args(extra)
        .env("RUST_LOG", "info")
        .envs(envs.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    for pipe in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway logs its address");
        if let Some(addr) = process::address_after(&line, "listening on http://") {
            break addr;
        }
    };
    Gateway { child, addr, lines }
}

/// The access events logged so far (waiting up to 5 s for `want` of them).
fn access_events(gw: &Gateway, want: usize) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    while events.len() < want {
        let Ok(line) = gw.lines.recv_timeout(Duration::from_secs(5)) else {
            break;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["target"] == "protogate::access" {
            events.push(v);
        }
    }
    events
}

#[tokio::test]
async fn one_event_per_request_with_its_request_id() {
    let gw = start(&[]);
    let http = reqwest::Client::new();
    let given = http
        .get(format!("http://{}/v1/shelves/1/books/3", gw.addr))
        .header("x-request-id", "req-given-42")
        .header("authorization", "Bearer secret-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), 200);
    assert_eq!(given.headers()["x-request-id"], "req-given-42");
    let missing = http
        .get(format!("http://{}/v1/no/such/route", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let made = missing.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(made.len(), 36, "a UUID: {made}");

    let events = access_events(&gw, 2);
    assert_eq!(events.len(), 2, "{events:?}");
    let ok = &events[0]["fields"];
    assert_eq!(ok["protocol"], "rest");
    assert_eq!(ok["method"], "library.v1.LibraryService/GetBook");
    assert_eq!(ok["route"], "GET /v1/{name=shelves/*/books/*}");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["grpc_code"], "OK");
    assert_eq!(ok["request_id"], "req-given-42");
    assert_eq!(ok["upstream"], "mock");
    assert!(
        ok["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{ok}"
    );
    let not_found = &events[1]["fields"];
    assert_eq!(not_found["method"], "unknown");
    assert_eq!(not_found["status"], 404);
    assert_eq!(not_found["grpc_code"], "NOT_FOUND");
    assert_eq!(not_found["request_id"], made.as_str());
    for e in &events {
        assert!(
            !e.to_string().contains("secret-token-value"),
            "a token was logged: {e}"
        );
    }
}

#[tokio::test]
async fn access_log_can_be_turned_off() {
    let gw = start(&["--access-log", "false"]);
    let r = reqwest::get(format!("http://{}/v1/shelves/1/books/3", gw.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert!(access_events(&gw, 1).is_empty());
}

#[tokio::test]
async fn the_event_names_the_verified_subject_and_the_sizes() {
    const SECRET: &str = "an-access-log-test-secret-of-32-bytes+";
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(
        &routes,
        "auth:\n  providers:\n    t: {issuer: t, algorithms: [HS256], hmac_secret_env: ACCESS_TEST_HMAC}\n",
    )
    .unwrap();
    let gw = start_with(
        &["--routes", routes.to_str().unwrap()],
        &[("ACCESS_TEST_HMAC", SECRET)],
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({"iss": "t", "sub": "user-7", "exp": exp});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let r = reqwest::Client::new()
        .get(format!("http://{}/v1/shelves/1/books/3", gw.addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let events = access_events(&gw, 1);
    let e = &events[0]["fields"];
    assert_eq!(e["subject"], "user-7");
    // GetBookRequest{name: "shelves/1/books/3"}: 2 + 17 bytes.
    assert_eq!(e["bytes_in"], 19);
    assert!(e["bytes_out"].as_u64().is_some_and(|n| n > 19), "{e}");
    assert!(
        !events[0].to_string().contains(&token),
        "the token was logged"
    );
}
