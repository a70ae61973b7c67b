//! `errors:` — the configured shape of REST error bodies, against a real
//! backend and the real gateway: grpc-gateway v1's shape and templates for
//! upstream statuses and the gateway's own refusals (404, 405, 400, 413,
//! 401), the template's context, a template failing at request time, a bad
//! template refused by `protogate check` and by a reload, the format
//! reloading with routes.yaml (the real binary, SIGHUP), hyper's own 400
//! answers, and Connect keeping its own error shape.

mod common;
#[path = "common/jwt.rs"]
mod jwt;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{KillOnDrop, listening_address};
use common::{Env, Reply};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A backend and the gateway configured with `routes` (the routes are the
/// bundled API's annotations).
async fn env_with(routes: &str) -> Env {
    Env::with_routes(routes).await
}

async fn send(env: &Env, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = env.http.request(m, env.url(path)).body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// An upstream UNAUTHENTICATED status with a google.rpc.ErrorInfo detail.
async fn upstream_error(env: &Env) -> Reply {
    let fail = [
        ("grpc-metadata-x-fail-code", "16"),
        ("grpc-metadata-x-fail-message", "token expired"),
        ("grpc-metadata-x-fail-detail", "TOKEN_EXPIRED"),
    ];
    send(env, "GET", "/v1/shelves/1/books/1", &fail, "").await
}

fn error_info() -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "TOKEN_EXPIRED",
        "domain": "tests.protogate"
    })
}

fn json_of(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

#[tokio::test]
async fn grpc_gateway_v1_shape_for_upstream_and_gateway_errors() {
    let env = env_with("errors: {format: grpc-gateway-v1}").await;
    let j = json_of(&upstream_error(&env).await, 401);
    assert_eq!(
        j,
        json!({"error": "token expired", "code": 16, "message": "token expired", "details": [error_info()]})
    );
    // Gateway-made: empty details are left out, as v1's marshaler does.
    let j = json_of(&env.get("/v9/nothing").await, 404);
    let msg = "no route for GET /v9/nothing";
    assert_eq!(j, json!({"error": msg, "code": 5, "message": msg}));
    let r = send(&env, "PATCH", "/v1/shelves/1", &[], "").await;
    assert_eq!(json_of(&r, 405)["code"], 12);
    assert!(
        r.header("allow").is_some_and(|a| a.contains("DELETE")),
        "{:?}",
        r.headers
    );
    let r = env.send_json("POST", "/v1/shelves", "{\"theme\": ").await;
    let j = json_of(&r, 400);
    assert_eq!((&j["code"], &j["error"]), (&json!(3), &j["message"]));
    let violation = &j["details"][0];
    assert_eq!(
        violation["@type"], "type.googleapis.com/google.rpc.BadRequest",
        "{j}"
    );
}

#[tokio::test]
async fn grpc_gateway_v1_emits_empty_details_with_emit_defaults_and_answers_413() {
    let env = env_with(
        "errors: {format: grpc-gateway-v1}\njson: {emit_defaults: true}\nlimits: {max_body_bytes: 64}",
    )
    .await;
    let j = json_of(&env.get("/v9/nothing").await, 404);
    assert_eq!(j["details"], json!([]), "{j}");
    let big = format!("{{\"theme\": \"{}\"}}", "x".repeat(200));
    let j = json_of(&env.send_json("POST", "/v1/shelves", &big).await, 413);
    assert_eq!(j["code"], 8, "{j}");
    assert_eq!(j["error"], j["message"], "{j}");
}

const JSON_TEMPLATE: &str = r#"
errors:
  format: template
  content_type: application/problem+json
  template: |
    {"type": {{ "https://errors.example.com/" ~ code_name|lower }},
     "title": {{ http_reason }}, "status": {{ http_status }},
     "detail": {{ message }}, "grpc_code": {{ code }},
     "instance": {{ path }}, "method": {{ method }}, "request_id": {{ request_id }},
     "errors": {{ details }}, "rpc_status": {{ status }}}
"#;

#[tokio::test]
async fn a_json_template_sees_the_documented_context() {
    let env = env_with(JSON_TEMPLATE).await;
    let problem = |r: &Reply, status: u16| {
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        r.json()
    };
    let r = upstream_error(&env).await;
    let j = problem(&r, 401);
    assert_eq!(j["type"], "https://errors.example.com/unauthenticated");
    assert_eq!(
        (&j["title"], &j["status"]),
        (&json!("Unauthorized"), &json!(401))
    );
    assert_eq!(
        (&j["detail"], &j["grpc_code"]),
        (&json!("token expired"), &json!(16))
    );
    assert_eq!(j["instance"], "/v1/shelves/1/books/1");
    assert_eq!(j["method"], "GET");
    assert_eq!(j["errors"], json!([error_info()]));
    assert_eq!(j["rpc_status"]["details"], json!([error_info()]));
    // The upstream's metadata still comes back as headers.
    assert_eq!(r.header("grpc-metadata-x-failure"), Some("injected"));

    let r = send(
        &env,
        "GET",
        "/v9/a\"quote?x=1",
        &[("x-request-id", "req-42")],
        "",
    )
    .await;
    let j = problem(&r, 404);
    assert_eq!(j["type"], "https://errors.example.com/not_found");
    assert_eq!(j["instance"], "/v9/a%22quote");
    assert_eq!(j["request_id"], "req-42");
    assert_eq!(j["errors"], json!([]));

    let r = env.send_json("POST", "/v1/shelves", "{\"theme\": 7}").await;
    let j = problem(&r, 400);
    assert_eq!(j["method"], "POST");
    let field = &j["errors"][0]["fieldViolations"][0]["field"];
    assert!(field.as_str().is_some_and(|f| f.contains("theme")), "{j}");
    // Without an id from the client, the one the gateway assigned.
    assert!(
        j["request_id"].as_str().is_some_and(|id| id.len() == 36),
        "{j}"
    );
}

#[tokio::test]
async fn a_text_template_and_a_template_failing_at_request_time() {
    let env = env_with(
        "errors: {format: template, content_type: text/plain, template: '{{ http_status }} {{ code_name }}: {{ message }}'}",
    )
    .await;
    let r = env.get("/v9/nothing").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (404, Some("text/plain"))
    );
    assert_eq!(r.text(), "404 NOT_FOUND: no route for GET /v9/nothing");
    let r = upstream_error(&env).await;
    assert_eq!(r.text(), "401 UNAUTHENTICATED: token expired");

    // The load-time samples (codes 3 and 14) pass; NOT_FOUND reaches the
    // undefined variable: that answer falls back to google.rpc.Status.
    let env = env_with(
        "errors: {format: template, template: '{% if code == 5 %}{{ nope }}{% endif %}{\"c\": {{ code }}}'}",
    )
    .await;
    let j = json_of(&env.get("/v9/nothing").await, 404);
    assert_eq!(
        j,
        json!({"code": 5, "message": "no route for GET /v9/nothing", "details": []})
    );
    let j = json_of(&upstream_error(&env).await, 401);
    assert_eq!(j, json!({"c": 16}));
}

#[tokio::test]
async fn auth_refusals_take_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ed.pem");
    std::fs::write(&pem, &jwt::keys().ed_public_pem).unwrap();
    let env = env_with(&format!(
        "errors: {{format: grpc-gateway-v1}}\nauth:\n  providers:\n    ed: {{issuer: https://ed.test, algorithms: [EdDSA], pem_file: {}}}",
        pem.display()
    ))
    .await;
    let r = env.get("/v1/shelves/1").await;
    let j = json_of(&r, 401);
    assert_eq!(j["code"], 16, "{j}");
    assert_eq!(j["error"], j["message"], "{j}");
    assert!(j.get("details").is_none(), "{j}");
    assert!(r.header("www-authenticate").is_some());
}

#[tokio::test]
async fn connect_keeps_its_own_error_shape() {
    let env = env_with(JSON_TEMPLATE).await;
    let r = send(
        &env,
        "POST",
        "/library.v1.LibraryService/GetShelf",
        &[
            ("content-type", "application/json"),
            ("connect-protocol-version", "1"),
            ("x-fail-code", "5"),
        ],
        "{\"name\": \"shelves/999\"}",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["code"], "not_found", "{}", r.text());
}

fn check(routes: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--routes", routes.to_str().unwrap()])
        .env_remove("PROTOGATE_ROUTES")
        .env_remove("PROTOGATE_DESCRIPTORS")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BAD_TEMPLATE: &str =
    "errors:\n  format: template\n  template: |\n    {\n      \"message\": {{ message }\n    }\n";

#[test]
fn check_refuses_a_bad_template_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(&routes, BAD_TEMPLATE).unwrap();
    let (code, err) = check(&routes);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("errors.template: line 2: syntax error"),
        "{err}"
    );
    // Quoting a value that already prints as JSON is caught too.
    std::fs::write(
        &routes,
        "errors: {format: template, template: '{\"m\": \"{{ message }}\"}'}",
    )
    .unwrap();
    let (code, err) = check(&routes);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not JSON"), "{err}");
    std::fs::write(&routes, "errors: {format: problem}").unwrap();
    let (code, err) = check(&routes);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown variant `problem`"), "{err}");
}

/// `protogate serve` with `routes`, its address read from its log.
fn serve(routes: &Path, upstream: &str) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_protogate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--watch", "false", "--listen", "127.0.0.1:0"])
        .args(["--routes", routes.to_str().unwrap(), "--upstream", upstream])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = listening_address(&mut lines);
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (KillOnDrop(child), addr)
}

fn sighup(child: &KillOnDrop) {
    let pid = libc::pid_t::try_from(child.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a signal it handles.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
}

#[tokio::test]
async fn the_format_reloads_with_routes_yaml_and_a_bad_one_is_refused() {
    let (backend, _) = common::start_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.yaml");
    std::fs::write(&routes, "errors: {format: status}\n").unwrap();
    let (child, addr) = serve(&routes, &backend.url());
    let nothing = format!("http://{addr}/v9/nothing");
    let body = || async {
        reqwest::get(&nothing)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(body().await["details"], json!([]));

    std::fs::write(&routes, "errors: {format: grpc-gateway-v1}\n").unwrap();
    sighup(&child);
    let mut reloaded = false;
    for _ in 0..250 {
        if body().await.get("error").is_some() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reloaded, "the grpc-gateway-v1 format never took over");

    // A bad template is refused: the previous format keeps serving.
    std::fs::write(&routes, BAD_TEMPLATE).unwrap();
    sighup(&child);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(body().await["error"], "no route for GET /v9/nothing");
}

#[tokio::test]
async fn requests_the_http_parser_refuses_take_the_format() {
    let env = env_with("errors: {format: grpc-gateway-v1}").await;
    let mut tcp = TcpStream::connect(env.gateway.addr).await.unwrap();
    tcp.write_all(b"GET /v1/shelves HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
    let j: Value = serde_json::from_str(body).unwrap();
    assert_eq!((&j["code"], &j["error"]), (&json!(3), &j["message"]), "{j}");
}
