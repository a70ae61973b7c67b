//! Errors the gateway makes itself, in the same JSON shape as upstream
//! errors (404, 405 + Allow, 413, 415, 400 for bad bodies, 501 for streaming
//! methods), plus percent-decoding of path variables and `?pretty`.

mod common;

use std::net::SocketAddr;

use common::{Env, Reply};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Any request with optional content type and body.
async fn request(env: &Env, method: &str, path: &str, ct: Option<&str>, body: &str) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = env.http.request(m, env.url(path)).body(body.to_string());
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// A gateway error in the JSON shape with a non-OK code (for statuses whose
/// code DESIGN.md leaves open).
fn assert_shape(r: &Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert!(j["code"].as_i64().is_some_and(|c| c > 0), "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    assert!(j["details"].is_array(), "{j}");
    j
}

/// The first field violation of a 400: (field, description).
fn violation(r: &Reply) -> (String, String) {
    let j = r.assert_error(400, 3);
    let d = &j["details"][0];
    assert_eq!(
        d["@type"], "type.googleapis.com/google.rpc.BadRequest",
        "{j}"
    );
    let v = &d["fieldViolations"][0];
    (
        v["field"].as_str().unwrap_or_default().to_string(),
        v["description"].as_str().unwrap_or_default().to_string(),
    )
}

/// The methods of an `Allow` header, sorted.
fn allow(r: &Reply) -> Vec<String> {
    let mut m: Vec<String> = r
        .header("allow")
        .unwrap_or_else(|| panic!("no Allow header: {:?}", r.headers))
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    m.sort();
    m
}

/// Sends raw HTTP/1.1 bytes (a request with `connection: close`); returns
/// the status code and the JSON body of the response.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    // The server may reset the connection after answering; keep what came.
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let (start, end) = (text.find('{'), text.rfind('}'));
    let body = match (start, end) {
        (Some(a), Some(b)) => serde_json::from_str(&text[a..=b]).unwrap(),
        _ => panic!("no JSON body: {text:?}"),
    };
    (status, body)
}

/// A JSON shelf body of exactly `len` bytes.
fn shelf_body(len: usize) -> String {
    let head = r#"{"theme":""#;
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[tokio::test]
async fn unknown_path_is_404_in_the_error_shape() {
    let env = Env::start().await;
    for path in [
        "/",
        "/v2/shelves/1",
        "/v1/shelves/1/nothing",
        "/v1/shelves/1/",
        "/v1//shelves",
        "/v1/shelves/1/books/1/cover/x",
    ] {
        let j = env.get(path).await.assert_error(404, 5);
        assert!(j["details"].as_array().unwrap().is_empty(), "{path}: {j}");
    }
    let j = env.get("/v2/shelves/1").await.assert_error(404, 5);
    assert!(
        j["message"].as_str().unwrap().contains("/v2/shelves/1"),
        "{j}"
    );
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let env = Env::start().await;
    for (method, path, allowed) in [
        ("PUT", "/v1/shelves/1", vec!["DELETE", "GET", "HEAD"]),
        ("DELETE", "/v1/shelves", vec!["GET", "HEAD", "POST"]),
        ("POST", "/v1/books", vec!["GET", "HEAD", "SEARCH"]),
        ("PATCH", "/v1/shelves/1/stats", vec!["GET", "HEAD"]),
    ] {
        let r = request(&env, method, path, Some("application/json"), "{}").await;
        let j = r.assert_error(405, 12);
        assert_eq!(allow(&r), allowed, "{method} {path}: {j}");
    }
    // A declared verb is split off: only the verb's template answers.
    let r = request(&env, "PUT", "/v1/shelves/1/books/1:move", None, "").await;
    r.assert_error(405, 12);
    assert_eq!(allow(&r), vec!["POST"], "{:?}", r.headers);
}

#[tokio::test]
async fn body_over_the_limit_is_413_with_content_length() {
    let env = Env::with_routes("limits: {max_body_bytes: 100}\n").await;
    let r = request(
        &env,
        "POST",
        "/v1/shelves",
        Some("application/json"),
        &shelf_body(100),
    )
    .await;
    assert_eq!(r.status, 200, "exactly at the limit: {}", r.text());
    for len in [101, 5000] {
        let r = request(
            &env,
            "POST",
            "/v1/shelves",
            Some("application/json"),
            &shelf_body(len),
        )
        .await;
        assert_shape(&r, 413);
    }
    // Nothing over the limit was created.
    env.get("/v1/shelves/5").await.assert_error(404, 5);
}

#[tokio::test]
async fn body_over_the_limit_is_413_when_chunked() {
    let env = Env::with_routes("limits: {max_body_bytes: 100}\n").await;
    let chunked = |body: &str| {
        let (a, b) = body.split_at(body.len() / 2);
        format!(
            "POST /v1/shelves HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
    };
    let (status, j) = raw_http(env.gateway.addr, chunked(&shelf_body(90)).as_bytes()).await;
    assert_eq!(status, 200, "under the limit: {j}");
    assert_eq!(j["name"], "shelves/4");
    let (status, j) = raw_http(env.gateway.addr, chunked(&shelf_body(400)).as_bytes()).await;
    assert_eq!(status, 413, "{j}");
    assert!(j["code"].as_i64().is_some_and(|c| c > 0), "{j}");
    assert!(j["message"].is_string() && j["details"].is_array(), "{j}");
    env.get("/v1/shelves/5").await.assert_error(404, 5);
}

#[tokio::test]
async fn non_json_body_is_415() {
    let env = Env::start().await;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/json; charset=latin1",
    ] {
        let r = request(&env, "POST", "/v1/shelves", Some(ct), r#"{"theme":"x"}"#).await;
        let j = assert_shape(&r, 415);
        assert!(
            j["message"]
                .as_str()
                .unwrap()
                .contains(ct.split(';').next().unwrap()),
            "{ct}: {j}"
        );
    }
    // JSON with parameters, and +json types, are fine.
    for ct in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let r = request(&env, "POST", "/v1/shelves", Some(ct), r#"{"theme":"x"}"#).await;
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let env = Env::start().await;
    for body in [
        r#"{"title":"#,
        "not json",
        r#"{"title":"x"} trailing"#,
        "[1,2]",
    ] {
        let r = request(
            &env,
            "POST",
            "/v1/shelves/1/books",
            Some("application/json"),
            body,
        )
        .await;
        r.assert_error(400, 3);
    }
    let r = request(&env, "POST", "/v1/shelves", Some("application/json"), "{").await;
    let j = r.assert_error(400, 3);
    assert!(j.to_string().to_lowercase().contains("json"), "{j}");
}

#[tokio::test]
async fn wrong_json_type_names_the_field_and_the_value() {
    let env = Env::start().await;
    for (body, value) in [
        (r#"{"title":"x","pageCount":"lots"}"#, "lots"),
        (r#"{"title":"x","pageCount":true}"#, "true"),
        (r#"{"title":"x","pageCount":{"n":1}}"#, "{"),
    ] {
        let r = request(
            &env,
            "POST",
            "/v1/shelves/1/books",
            Some("application/json"),
            body,
        )
        .await;
        let (field, why) = violation(&r);
        assert_eq!(field, "book.pageCount", "{body}");
        assert!(why.contains(value), "{body}: {why}");
    }
    // Nested and whole-body routes name the full path too.
    let r = request(
        &env,
        "PATCH",
        "/v1/shelves/1/books/1",
        Some("application/json"),
        r#"{"publisher":{"name":7}}"#,
    )
    .await;
    let (field, why) = violation(&r);
    assert_eq!(field, "book.publisher.name");
    assert!(why.contains('7'), "{why}");
    let r = request(
        &env,
        "POST",
        "/v1/shelves/1/books/1:move",
        Some("application/json"),
        r#"{"otherShelfName":["shelves/2"]}"#,
    )
    .await;
    assert_eq!(violation(&r).0, "otherShelfName");
}

#[tokio::test]
async fn unknown_json_field_is_named() {
    let env = Env::start().await;
    let r = request(
        &env,
        "POST",
        "/v1/shelves/1/books",
        Some("application/json"),
        r#"{"title":"x","subtitle":"y"}"#,
    )
    .await;
    let (field, why) = violation(&r);
    assert!(field.contains("subtitle"), "{field}");
    assert!(why.contains("subtitle"), "{why}");
    let r = request(
        &env,
        "POST",
        "/v1/shelves/1/books/1:move",
        Some("application/json"),
        r#"{"otherShelfName":"shelves/2","when":"now"}"#,
    )
    .await;
    assert!(violation(&r).0.contains("when"));
}

#[tokio::test]
async fn unknown_json_fields_ignored_when_configured() {
    let env = Env::with_routes("json: {unknown_fields: ignore}\n").await;
    let r = request(
        &env,
        "POST",
        "/v1/shelves/1/books",
        Some("application/json"),
        r#"{"title":"Dune","subtitle":"y"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["title"], "Dune");
    assert!(j.get("subtitle").is_none(), "{j}");
}

#[tokio::test]
async fn body_on_a_route_without_body_is_400() {
    let env = Env::start().await;
    let r = request(
        &env,
        "GET",
        "/v1/shelves/1",
        Some("application/json"),
        r#"{"name":"x"}"#,
    )
    .await;
    r.assert_error(400, 3);
    // Whitespace is no body.
    let r = request(
        &env,
        "GET",
        "/v1/shelves/1",
        Some("application/json"),
        " \r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn path_variables_are_percent_decoded() {
    let env = Env::start().await;
    let plain = env.get("/v1/shelves/1/books/1").await;
    assert_eq!(plain.status, 200);
    for encoded in [
        "/v1/shelves/%31/books/%31",
        "/v1/shelves/1/books/%31",
        "/v1/shelves/%31/books/1",
    ] {
        let r = env.get(encoded).await;
        assert_eq!(r.status, 200, "{encoded}: {}", r.text());
        assert_eq!(r.json(), plain.json(), "{encoded}");
    }
    let r = env.get("/v1/shelves/%32").await;
    assert_eq!(r.json()["name"], "shelves/2");
}

#[tokio::test]
async fn multi_segment_variables_keep_reserved_characters_encoded() {
    let env = Env::start().await;
    // `%2F` inside `{name=shelves/*}` stays `%2F`: the backend sees a name
    // that is not a shelf name (and not `shelves/a/b`).
    let j = env.get("/v1/shelves/a%2Fb").await.assert_error(400, 3);
    assert!(
        j["message"].as_str().unwrap().contains("`shelves/a%2Fb`"),
        "{j}"
    );
    // Unreserved characters are decoded.
    let j = env.get("/v1/shelves/a%20b").await.assert_error(400, 3);
    assert!(
        j["message"].as_str().unwrap().contains("`shelves/a b`"),
        "{j}"
    );
}

#[tokio::test]
async fn single_segment_variables_are_fully_decoded() {
    let env = Env::with_routes(
        "http:\n  rules:\n    - selector: library.v1.LibraryService.GetShelf\n      get: /v1/shelf/{name}\n",
    )
    .await;
    let r = env.get("/v1/shelf/shelves%2F2").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "shelves/2");
    // The YAML rule replaced the annotation: only DeleteShelf is left there.
    let r = env.get("/v1/shelves/2").await;
    r.assert_error(405, 12);
    assert_eq!(allow(&r), ["DELETE"]);
}

#[tokio::test]
async fn invalid_utf8_in_a_path_variable_is_400() {
    let env = Env::start().await;
    let r = env.get("/v1/shelves/%FF%FE").await;
    let (field, _) = violation(&r);
    assert_eq!(field, "name");
}

#[tokio::test]
async fn pretty_query_indents_the_output() {
    let env = Env::start().await;
    let compact = env.get("/v1/shelves/1").await;
    assert!(!compact.text().contains('\n'), "{}", compact.text());
    for q in ["?pretty", "?pretty=true", "?pretty=1"] {
        let r = env.get(&format!("/v1/shelves/1{q}")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let text = r.text();
        assert!(text.starts_with("{\n  \""), "{q}: {text}");
        assert!(text.contains("\n    \"floor\": \"1\""), "{q}: {text}");
        assert_eq!(r.json(), compact.json(), "{q}");
    }
    let r = env.get("/v1/shelves/1?pretty=false").await;
    assert_eq!(r.body, compact.body);
    // Combined with other parameters, and on errors.
    let r = env.get("/v1/shelves/2/books?pretty&pageSize=1").await;
    assert!(r.text().starts_with("{\n  \""), "{}", r.text());
    assert_eq!(r.json()["books"].as_array().unwrap().len(), 1);
    let r = env.get("/v1/shelves/99?pretty").await;
    r.assert_error(404, 5);
    assert!(r.text().starts_with("{\n  \""), "{}", r.text());
}
